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
 *
 * One fix in the library's own code, applied as it loads (patchedLibrary): its intrinsic functions removed every
 * backslash from any string they returned.
 */
import { readFileSync } from 'node:fs';
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

/**
 * Edits of the library's code (its CommonJS build, the one `require` loads), each `[what it has, what it gets]`.
 *
 * Its intrinsic functions end with `result.replaceAll("\\", "")` on every string they return, meant to undo the
 * escapes of quoted arguments (`\'`, `\{`, `\}`, `\\`). Step Functions undoes those escapes in the quoted
 * arguments only, and returns what the function computed: `States.JsonToString` of a result holding a quote gave
 * JSON that no longer parsed (the failure report built without a Lambda, a batch item's vars), and a value holding a
 * backslash (`C:\temp`, a newline in JSON) lost it. The escapes are now undone where a quoted argument is read, and
 * in `States.Format`'s template where its placeholders are found (an escaped `\{\}` is text, not a placeholder).
 */
export const LIBRARY_PATCHES: ReadonlyArray<readonly [string, string]> = [
  [
    `    const parsedArgs = parseArguments(input, context, ...args);
    validateArguments(this.funcDefinition, ...parsedArgs);
    let result = this.execute(...parsedArgs);
    if (typeof result === "string") {
      result = result.replaceAll("\\\\", "");
    }
    return result;
`,
    `    const parsedArgs = parseArguments(input, context, ...args).map((arg, i) => args[i][0] === "'" && !(this.funcDefinition.name === "States.Format" && i === 0) ? arg.replace(/\\\\([\\s\\S])/g, "$1") : arg);
    validateArguments(this.funcDefinition, ...parsedArgs);
    return this.execute(...parsedArgs);
`,
  ],
  [
    '    const placeholdersNumber = templateStr.match(/\\{\\}/g)?.length ?? 0;\n',
    '    const placeholdersNumber = (templateStr.match(/\\\\[\\s\\S]|\\{\\}/g) ?? []).filter((found) => found === "{}").length;\n',
  ],
  [
    '    return templateStr.replace(/\\{\\}/g, () => placeholderValues[i++]);\n',
    '    return templateStr.replace(/\\\\([\\s\\S])|\\{\\}/g, (found, escaped) => escaped ?? String(placeholderValues[i++]));\n',
  ],
];

/** The library's source with every edit applied; an edit whose code is not there (another version) is an error. */
export function patchedLibrarySource(source: string): string {
  return LIBRARY_PATCHES.reduce((code, [from, to]) => {
    if (!code.includes(from)) throw new Error(`aws-local-stepfunctions is not the version local/library-shims.ts patches: no ${JSON.stringify(from.trim())}`);
    return code.replace(from, to);
  }, source);
}

/**
 * Loads the library's CommonJS build, edited, into require's cache, so every `require('aws-local-stepfunctions')`
 * gets it (vitest too: vitest.config.mts points the package's name at this build).
 */
function loadPatchedLibrary(): void {
  const file = require.resolve('aws-local-stepfunctions');
  if (require.cache[file]) return;
  const loaded = new Module(file, module) as Module & { _compile(code: string, filename: string): void };
  loaded.filename = file;
  loaded.paths = (Module as unknown as { _nodeModulePaths(from: string): string[] })._nodeModulePaths(path.dirname(file));
  require.cache[file] = loaded;
  try {
    loaded._compile(patchedLibrarySource(readFileSync(file, 'utf8')), file);
    loaded.loaded = true;
  } catch (err) {
    delete require.cache[file];
    throw err;
  }
}
loadPatchedLibrary();
