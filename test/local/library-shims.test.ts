/**
 * What aws-local-stepfunctions loads, as a local run gets it: nothing that reaches AWS, and its definition check only
 * when a definition is checked, its schemas compiled once. And where the library differs from Step Functions in what
 * this project's definitions use, the local run does as Step Functions does: intrinsic functions' strings, Task
 * states' timeouts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import { afterEach, expect, it, vi } from 'vitest';
import { nodeArgsOf } from '../../bin/npm-scripts';
import { libraryModule, patchedLibrarySource, REFUSED_LAMBDA_MESSAGE } from '../../local/library-shims';
import { executorFor, NO_TIMEOUT_SECONDS } from '../../local/workflow';
import { runProcess } from '../helpers/child-process';

const ROOT = path.join(__dirname, '..', '..');
const DEPLOYED = { StartAt: 'Deployed', States: { Deployed: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:123456789012:function:deployed', End: true } } };

it('a Task state without a local handler fails the execution with the refusal, instead of invoking the Lambda its ARN names', async () => {
  const machine = new StateMachine(DEPLOYED as never, { validationOptions: { noValidate: true } });
  await expect(machine.run({}).result).rejects.toThrow(REFUSED_LAMBDA_MESSAGE);
});

it('so does one given AWS credentials of a Cognito identity pool', async () => {
  const machine = new StateMachine(DEPLOYED as never, {
    validationOptions: { noValidate: true },
    awsConfig: { region: 'us-east-1', credentials: { cognitoIdentityPool: { identityPoolId: 'us-east-1:00000000-0000-0000-0000-000000000000' } } },
  });
  await expect(machine.run({}).result).rejects.toThrow(REFUSED_LAMBDA_MESSAGE);
});

it('the definition check compiles its schemas once for each set of options, and still refuses what it must after that', () => {
  type Ajv = new (options: object) => object;
  const ajv = require(require.resolve('ajv', { paths: [path.dirname(libraryModule('asl-validator'))] })) as { default: Ajv };
  const RealAjv = ajv.default;
  let built = 0;
  ajv.default = class CountedAjv extends RealAjv {
    constructor(options: object) {
      super(options);
      built += 1;
    }
  };
  // The local runner's options (executorFor): a file run before this one in the same worker may have built their Ajv.
  const check = (definition: object) => executorFor(definition, true);
  const pass = (name: string) => ({ StartAt: name, States: { [name]: { Type: 'Pass', End: true } } });
  const badPath = { StartAt: 'P', States: { P: { Type: 'Pass', InputPath: 'not a path', End: true } } };
  try {
    check(pass('First'));
    check(pass('Second'));
    expect(() => check({ StartAt: 'NoResource', States: { NoResource: { Type: 'Task', End: true } } })).toThrow(/SCHEMA_VALIDATION_FAILED/);
    expect(() => check({ StartAt: 'Missing', States: { Other: { Type: 'Pass', End: true } } })).toThrow(/MISSING_TRANSITION_TARGET/);
    expect(() => check(badPath)).toThrow(/InputPath/);
    check(pass('AfterRefusals'));
    const first = built;
    expect(first).toBeLessThanOrEqual(1);
    // Options no other check uses get an Ajv of their own: without path checks, the same path passes.
    const lenient = (definition: object) => new StateMachine(definition as never, { validationOptions: { checkArn: false, checkPaths: false } });
    lenient(badPath);
    lenient(pass('Lenient'));
    expect(built).toBe(first + 1);
  } finally {
    ajv.default = RealAjv;
  }
});

it('`npm start` runs the built workflow without loading the definition check or the AWS SDK\'s Lambda client and credential providers', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webrun-shims-'));
  try {
    const report = path.join(dir, 'loaded.json');
    const { status, stderr } = await runProcess(
      process.execPath,
      ['--require', path.join(ROOT, 'test', 'fixtures', 'report-loaded.cjs'), ...nodeArgsOf('start'), 'examples/single-task.json', '--wait-scale', '0', '--json'],
      // TMPDIR: the run's temporary folder (test/global-setup.ts), where the run makes its results folder.
      { cwd: ROOT, env: { PATH: process.env.PATH, TMPDIR: os.tmpdir(), LOADED_REPORT: report } },
    );
    expect(status, stderr).toBe(0);
    const loaded = JSON.parse(fs.readFileSync(report, 'utf8')) as string[];
    expect(loaded).toContain(require.resolve('aws-local-stepfunctions'));
    const heavy = loaded.filter((file) => /\/node_modules\/(ajv|jsonata|asl-validator|@aws-sdk\/(client-lambda|credential-providers))\//.test(file));
    // Only the stand-ins are in the cache, each under the name of the module it stands for.
    expect(heavy.sort()).toEqual(['@aws-sdk/client-lambda', '@aws-sdk/credential-providers', 'asl-validator'].map(libraryModule).sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('intrinsic functions return their strings as Step Functions does: backslashes and quotes kept, escapes undone in quoted arguments only', async () => {
  const value = { text: 'He said "hi"\tC:\\temp\nnext line', nested: { list: ['a\\b', "it's"] } };
  const machine = executorFor({
    StartAt: 'P',
    States: {
      P: {
        Type: 'Pass',
        Parameters: {
          'json.$': 'States.JsonToString($.value)',
          'copy.$': 'States.StringToJson(States.JsonToString($.value))',
          'text.$': "States.Format('{} wrote \\'{}\\' \\{\\} \\\\{}', $.value.nested.list[1], $.value.text, $.value.nested.list[0])",
          'merged.$': 'States.JsonMerge(States.StringToJson(States.JsonToString($.value)), $.extra, false)',
        },
        End: true,
      },
    },
  }, false);
  const out = (await machine.run({ value, extra: { more: 'C:\\x' } } as never).result) as Record<string, unknown>;
  expect(out.json).toBe(JSON.stringify(value));
  expect(out.copy).toEqual(value);
  // The template's escapes are undone (\' \{ \} \\), the values inserted as they are, backslashes and all.
  expect(out.text).toBe(`it's wrote '${value.text}' {} \\a\\b`);
  expect(out.merged).toEqual({ ...value, more: 'C:\\x' });
});

it('the library\'s code is edited only where it has the code the edits expect (another version is refused, not run unedited)', () => {
  expect(() => patchedLibrarySource('module.exports = {};')).toThrow(/aws-local-stepfunctions is not the version local\/library-shims.ts patches/);
  expect(patchedLibrarySource(fs.readFileSync(require.resolve('aws-local-stepfunctions'), 'utf8'))).not.toContain('replaceAll("\\\\", "")');
});

afterEach(() => {
  vi.useRealTimers();
});

it('a Task state without a timeout of its own is not timed out: the library\'s 60 s default is not Step Functions\'', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const definition = { StartAt: 'Wait for a person', States: { 'Wait for a person': { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:123456789012:function:answer', End: true } } };
  /** A handler that answers after 70 s, as a person answering a guardrail question or a batch's child execution may. */
  const answersAfter70s = () => new Promise<{ answered: boolean }>((resolve) => setTimeout(() => resolve({ answered: true }), 70_000));
  const run = (machine: StateMachine) => {
    const result = machine.run({} as never, { overrides: { taskResourceLocalHandlers: { 'Wait for a person': answersAfter70s } } }).result;
    result.catch(() => undefined);
    return result;
  };
  // The library as it is: 60 s, then States.Timeout.
  const bare = run(new StateMachine(definition as never, { validationOptions: { noValidate: true } }));
  // As the local runner builds its executors.
  const local = run(executorFor(definition, false));
  await vi.advanceTimersByTimeAsync(70_000);
  await expect(bare).rejects.toMatchObject({ cause: { name: 'States.Timeout' } });
  await expect(local).resolves.toEqual({ answered: true });
  // A timeout the definition sets is kept.
  const timed = run(executorFor({ ...definition, States: { 'Wait for a person': { ...definition.States['Wait for a person'], TimeoutSeconds: 65 } } }, false));
  await vi.advanceTimersByTimeAsync(70_000);
  await expect(timed).rejects.toMatchObject({ cause: { name: 'States.Timeout' } });
  expect(NO_TIMEOUT_SECONDS * 1000).toBeLessThanOrEqual(2 ** 31 - 1);
});

it('a timeout longer than a Node.js timer holds (the construct takes execution timeouts up to a year): not fired at once', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const THIRTY_DAYS = 30 * 24 * 3600;
  const answersAfter70s = () => new Promise<{ answered: boolean }>((resolve) => setTimeout(() => resolve({ answered: true }), 70_000));
  const run = (definition: object) => {
    const result = executorFor(definition, false).run({} as never, { overrides: { taskResourceLocalHandlers: { Step: answersAfter70s } } }).result;
    result.catch(() => undefined);
    return result;
  };
  const step = { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:123456789012:function:answer', End: true };
  const ofExecution = run({ StartAt: 'Step', TimeoutSeconds: THIRTY_DAYS, States: { Step: step } });
  const ofState = run({ StartAt: 'Step', States: { Step: { ...step, TimeoutSeconds: THIRTY_DAYS } } });
  await vi.advanceTimersByTimeAsync(70_000);
  await expect(ofExecution).resolves.toEqual({ answered: true });
  await expect(ofState).resolves.toEqual({ answered: true });
});
