import { SFNClient } from '@aws-sdk/client-sfn';
import { makeCleanup, type CleanupHandler, type ExecutionStatusChangeEvent } from './shared/cleanup';
import { instrument, lambdaDeps, tracer } from './shared/lambda-runtime';

const sfn = tracer.captureAWSv3Client(new SFNClient({}));
let cleanup: CleanupHandler | undefined;

/**
 * Lambda entry point, invoked by EventBridge when an execution ends ABORTED, TIMED_OUT or FAILED: see
 * `makeCleanup` in ./shared/cleanup.ts. The webrun client comes from the same factory as the workflow Lambdas
 * (API key from Secrets Manager, cached per warm container).
 */
export const handler = instrument('cleanupSession', async (event) => {
  if (!cleanup) {
    const { client, sessions, log } = lambdaDeps();
    cleanup = makeCleanup({ sfn, client, sessions, log });
  }
  return cleanup(event as ExecutionStatusChangeEvent);
});
