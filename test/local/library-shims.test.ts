/**
 * What aws-local-stepfunctions loads, as a local run gets it: nothing that reaches AWS, and its definition check only
 * when a definition is checked, its schemas compiled once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import { expect, it } from 'vitest';
import { nodeArgsOf } from '../../bin/npm-scripts';
import { libraryModule, REFUSED_LAMBDA_MESSAGE } from '../../local/library-shims';
import { executorFor } from '../../local/workflow';
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
