/**
 * What aws-local-stepfunctions loads eagerly, replaced in require's cache before it loads. Imported before the
 * library: by local/workflow.ts, the module that loads it, and by test/setup.ts, so that each test worker has the
 * shims before any test file loads the library.
 *
 * - A local run never calls AWS. The library invokes the real Lambda of a Task state that has no local handler,
 *   through the AWS SDK, with whatever credentials the machine has (or a Cognito identity pool's). Every Task state
 *   the runner executes has a local handler, so neither is ever needed: the library gets a Lambda client and a
 *   credential provider that refuse, and a state that would reach AWS fails with an error that says so.
 * - Its definition check (asl-validator, with Ajv and JSONata behind it) loads when a definition is first checked,
 *   not with the library: `npm start` runs definitions built and checked ahead of time (local/built/), so it never
 *   loads the check.
 *
 * Together they keep about 0.2 s of loading (the SDK's client and credential providers, Ajv, JSONata) out of every
 * `npm start`.
 */
import Module from 'node:module';
import * as path from 'node:path';

export const REFUSED_LAMBDA_MESSAGE = 'A local run never calls AWS Lambda: this Task state has no local handler';

const library = path.dirname(require.resolve('aws-local-stepfunctions'));

/** The file `request` resolves to when the library requires it. */
export const libraryModule = (request: string): string => require.resolve(request, { paths: [library] });

/** Puts `exports` in require's cache as the module the library gets for `request` (unless it is loaded already). */
function shim(request: string, exports: unknown): void {
  const file = libraryModule(request);
  if (require.cache[file]) return;
  const stub = new Module(file);
  stub.filename = file;
  stub.loaded = true;
  stub.exports = exports;
  require.cache[file] = stub;
}

const refuse = (): never => {
  throw new Error(REFUSED_LAMBDA_MESSAGE);
};

shim('@aws-sdk/client-lambda', {
  LambdaClient: class RefusedLambdaClient {
    constructor() {
      refuse();
    }
  },
  InvokeCommand: class InvokeCommand {},
});
shim('@aws-sdk/credential-providers', { fromCognitoIdentityPool: refuse });

type AslValidator = (definition: unknown, options?: unknown) => unknown;
const validatorFile = libraryModule('asl-validator');
let validator: AslValidator | undefined;
// The library calls the module itself (`require('asl-validator')(definition, options)`): the shim is a function
// that loads the real one on its first call, from the cache entry it takes over.
shim('asl-validator', function aslValidator(definition: unknown, options?: unknown): unknown {
  if (!validator) {
    delete require.cache[validatorFile];
    validator = require(validatorFile) as AslValidator;
  }
  return validator(definition, options);
});
