/**
 * A local run never calls AWS. aws-local-stepfunctions invokes the real Lambda of a Task state that has no local
 * handler, through the AWS SDK, with whatever credentials the machine has. Every Task state the runner executes has
 * a local handler, so that client is never needed: this gives the library, before it loads, a Lambda client that
 * refuses instead, and a state that would reach AWS fails with an error that says so. It also keeps the SDK's Lambda
 * client (about 90 ms to load) out of `npm start`. Imported before the library: by local/workflow.ts, the module that
 * loads it, and by test/setup.ts so that each test worker has it before any test file loads the library.
 */
import Module from 'node:module';
import * as path from 'node:path';

export const REFUSED_LAMBDA_MESSAGE = 'A local run never calls AWS Lambda: this Task state has no local handler';

const library = path.dirname(require.resolve('aws-local-stepfunctions'));
const lambdaClientModule = require.resolve('@aws-sdk/client-lambda', { paths: [library] });

if (!require.cache[lambdaClientModule]) {
  const stub = new Module(lambdaClientModule);
  stub.filename = lambdaClientModule;
  stub.loaded = true;
  stub.exports = {
    LambdaClient: class RefusedLambdaClient {
      constructor() {
        throw new Error(REFUSED_LAMBDA_MESSAGE);
      }
    },
    InvokeCommand: class InvokeCommand {},
  };
  require.cache[lambdaClientModule] = stub;
}
