/** A Lambda context as the runtime passes it, for entry points under test. */
import type { Context } from 'aws-lambda';

export function lambdaContext(remainingMs = 30_000, requestId = 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef'): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'webrun-sfn-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:webrun-sfn-test',
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: '/aws/lambda/webrun-sfn-test',
    logStreamName: '2030/01/01/[$LATEST]abc',
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
