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
 *   loads the check. Once loaded, it compiles its JSON schemas once per process rather than once per definition.
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
type AjvConstructor = new (options: object) => object;
const validatorFile = libraryModule('asl-validator');
let validator: AslValidator | undefined;
let ajvModule: { default: AjvConstructor } | undefined;
/** For each set of check options, the Ajv the first check built, compiled and added its formats and keywords to. */
const compiledAjv = new Map<string, object>();

/**
 * The Ajv a check gets for `key`: the first check's, whose schemas, formats and keywords are already in, through a view
 * on which adding them again does nothing (Ajv refuses a keyword twice). A check's `validate` sets its own `errors`.
 */
function ajvFor(key: string, Ajv: AjvConstructor, options: object): object {
  const compiled = compiledAjv.get(key);
  if (!compiled) {
    const ajv = new Ajv(options);
    compiledAjv.set(key, ajv);
    return ajv;
  }
  const view: object = new Proxy(compiled, {
    get: (target, property, receiver) => (property === 'addFormat' || property === 'addKeyword' ? () => view : Reflect.get(target, property, receiver)),
  });
  return view;
}

// The library calls the module itself (`require('asl-validator')(definition, options)`): the shim is a function
// that loads the real one on its first call, from the cache entry it takes over.
//
// The check builds a new Ajv for every definition and compiles its fifteen JSON schemas into it (about 0.4 s of CPU).
// The schemas, and the formats and keywords the check adds for the same options, are the same every time: while the
// (synchronous) check runs, its `new Ajv()` gets the Ajv of the first check with those options (ajvFor).
shim('asl-validator', function aslValidator(definition: unknown, options?: unknown): unknown {
  if (!validator) {
    delete require.cache[validatorFile];
    validator = require(validatorFile) as AslValidator;
    ajvModule = require(require.resolve('ajv', { paths: [path.dirname(validatorFile)] })) as { default: AjvConstructor };
  }
  const ajv = ajvModule!;
  const Ajv = ajv.default;
  const key = JSON.stringify(options ?? null);
  ajv.default = function checkAjv(ajvOptions: object) {
    return ajvFor(key, Ajv, ajvOptions);
  } as unknown as AjvConstructor;
  try {
    return validator(definition, options);
  } finally {
    ajv.default = Ajv;
  }
});
