import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  InvalidArn,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { GetObjectCommand, NoSuchKey, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { executionConsoleUrl } from '../../cli/aws';
import { StateNames } from '../../lambdas/shared/contract';
import { main, type CliIo } from '../../cli/main';
import { endedEarlyHistory, EXECUTION_ARN, FAILURE_CAUSE, failedHistory, INPUT, KEPT_RESULT, OUTPUT, REGION, STATE_MACHINE_ARN, succeededHistory } from './fixtures';
import { runProcess } from '../helpers/child-process';

const sfn = mockClient(SFNClient);
const cfn = mockClient(CloudFormationClient);
const s3 = mockClient(S3Client);

const dir = mkdtempSync(path.join(tmpdir(), 'webrun-cli-'));
const inputFile = path.join(dir, 'input.json');
writeFileSync(inputFile, JSON.stringify(INPUT));
const badInputFile = path.join(dir, 'bad.json');
writeFileSync(badInputFile, JSON.stringify({ tasks: [{ taskDetails: '   ' }] }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Regions the SFN and CloudFormation clients were made for. */
  regions: { sfn: Array<string | undefined>; cfn: Array<string | undefined> };
}

async function run(argv: string[], extra: Partial<CliIo> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const regions: Run['regions'] = { sfn: [], cfn: [] };
  const code = await main({
    argv,
    env: {},
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: async () => JSON.stringify(INPUT),
    sleep: async () => {},
    cwd: dir,
    clients: {
      sfn: (region) => (regions.sfn.push(region), new SFNClient({ region: region ?? 'us-east-1' })),
      cloudFormation: (region) => (regions.cfn.push(region), new CloudFormationClient({ region: region ?? 'us-east-1' })),
      s3: (region) => new S3Client({ region: region ?? 'us-east-1' }),
    },
    ...extra,
  });
  return { code, stdout, stderr, regions };
}

/** The Step Functions console page of the fixtures' execution (commercial partition, eu-west-1). */
const CONSOLE_URL = `https://${REGION}.console.aws.amazon.com/states/home?region=${REGION}#/v2/executions/details/${EXECUTION_ARN}`;

const sdkError = <T>(Ctor: new (o: { message: string; $metadata: object }) => T, message: string) => new Ctor({ message, $metadata: {} });
const stackWithOutput = { Stacks: [{ StackName: 'WebrunSfn', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: [{ OutputKey: 'StateMachineArn', OutputValue: STATE_MACHINE_ARN }] }] } as never;
const started = { executionArn: EXECUTION_ARN, startDate: new Date('2030-01-01T09:00:00Z') };
const describeSucceeded = { executionArn: EXECUTION_ARN, stateMachineArn: STATE_MACHINE_ARN, name: 'run-1', status: 'SUCCEEDED', startDate: new Date('2030-01-01T09:00:00Z'), stopDate: new Date('2030-01-01T09:00:30Z'), output: JSON.stringify(OUTPUT), outputDetails: { included: true } } as never;
const describeFailed = { executionArn: EXECUTION_ARN, stateMachineArn: STATE_MACHINE_ARN, name: 'run-1', status: 'FAILED', startDate: new Date('2030-01-01T09:00:00Z'), stopDate: new Date('2030-01-01T09:00:20Z'), error: 'Webrun.TaskFailed', cause: FAILURE_CAUSE } as never;

beforeEach(() => {
  sfn.reset();
  cfn.reset();
  s3.reset();
});

describe('start', () => {
  it('validates the input, finds the state machine in the stack outputs and starts an execution with a name', async () => {
    cfn.on(DescribeStacksCommand, { StackName: 'WebrunSfn' }).resolves(stackWithOutput);
    sfn.on(StartExecutionCommand).resolves(started);
    const r = await run(['start', inputFile, '--name', 'nightly-2030-01-01', '--region', REGION]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${EXECUTION_ARN}\n`);
    expect(r.stderr).toContain(`npx webrun-sfn follow ${EXECUTION_ARN}`);
    expect(r.stderr).toContain(`\n  console: ${CONSOLE_URL}\n`);
    expect(sfn.commandCalls(StartExecutionCommand)[0].args[0].input).toEqual({ stateMachineArn: STATE_MACHINE_ARN, input: JSON.stringify(INPUT), name: 'nightly-2030-01-01' });
    expect(r.regions).toEqual({ cfn: [REGION], sfn: [REGION] });
  });

  it('reads the stack name from the config file given with --config', async () => {
    const config = path.join(dir, 'prod.config.json');
    writeFileSync(config, JSON.stringify({ stackName: 'WebrunSfnProd' }));
    cfn.on(DescribeStacksCommand, { StackName: 'WebrunSfnProd' }).resolves(stackWithOutput);
    sfn.on(StartExecutionCommand).resolves(started);
    expect((await run(['start', inputFile, '--config', config])).code).toBe(0);
    expect(cfn.commandCalls(DescribeStacksCommand)[0].args[0].input).toEqual({ StackName: 'WebrunSfnProd' });
  });

  it('under `npm run cli`, the input and --config are read from the folder the command was typed in, which a missing file names', async () => {
    // npm runs the script in the package folder and names the user's folder in INIT_CWD.
    const typedIn = mkdtempSync(path.join(tmpdir(), 'webrun-cli-typed-'));
    writeFileSync(path.join(typedIn, 'in.json'), JSON.stringify(INPUT));
    writeFileSync(path.join(typedIn, 'my.config.json'), JSON.stringify({ stackName: 'WebrunSfnMine' }));
    const npm = { cwd: undefined, env: { INIT_CWD: typedIn, npm_lifecycle_script: 'tsx bin/cli.ts' } };
    cfn.on(DescribeStacksCommand, { StackName: 'WebrunSfnMine' }).resolves(stackWithOutput);
    sfn.on(StartExecutionCommand).resolves(started);
    const r = await run(['start', 'in.json', '--config', 'my.config.json'], npm);
    expect(r.code).toBe(0);
    expect(sfn.commandCalls(StartExecutionCommand)[0].args[0].input.input).toBe(JSON.stringify(INPUT));
    const missing = await run(['start', 'gone.json'], npm);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`gone.json (${path.join(typedIn, 'gone.json')})`);
    const noConfig = await run(['start', 'in.json', '--config', 'other.config.json'], npm);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain(path.join(typedIn, 'other.config.json'));
  });

  it('with --state-machine-arn (or WEBRUN_STATE_MACHINE_ARN) it skips the stack and uses the ARN region', async () => {
    sfn.on(StartExecutionCommand).resolves(started);
    const r = await run(['start', '-', '--state-machine-arn', STATE_MACHINE_ARN, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ executionArn: EXECUTION_ARN, startDate: '2030-01-01T09:00:00.000Z' });
    // The console link is for people: on stderr, never in the --json object.
    expect(r.stderr).toContain(`console: ${CONSOLE_URL}`);
    expect(r.stdout).not.toContain('console');
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(0);
    expect(r.regions.sfn).toEqual([REGION]);
    const viaEnv = await run(['start', inputFile], { env: { WEBRUN_STATE_MACHINE_ARN: STATE_MACHINE_ARN } });
    expect(viaEnv.code).toBe(0);
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });

  it('rejects an invalid input before calling AWS, naming the file and the field', async () => {
    const r = await run(['start', badInputFile, '--state-machine-arn', STATE_MACHINE_ARN, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`webrun-sfn: ${badInputFile}: tasks[0].taskDetails: must not be empty`);
    expect(JSON.parse(r.stdout)).toEqual({ error: { name: 'Webrun.InvalidInput', cause: `${badInputFile}: tasks[0].taskDetails: must not be empty` } });
    expect(sfn.calls()).toHaveLength(0);
  });

  it('rejects a missing file, bad JSON and a bad execution name', async () => {
    expect((await run(['start', path.join(dir, 'nope.json')])).stderr).toContain('cannot read');
    // An input mistake has the one name, as the local command's: Webrun.InvalidInput.
    expect(JSON.parse((await run(['start', path.join(dir, 'nope.json'), '--json'])).stdout).error.name).toBe('Webrun.InvalidInput');
    const notJson = path.join(dir, 'not.json');
    writeFileSync(notJson, '{');
    expect((await run(['start', notJson])).stderr).toContain('is not valid JSON');
    const badName = await run(['start', inputFile, '--name', 'has space', '--state-machine-arn', STATE_MACHINE_ARN]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('--name "has space" is not a valid execution name');
    expect(sfn.calls()).toHaveLength(0);
  });

  it('says when the name was used for another input or a finished execution', async () => {
    sfn.on(StartExecutionCommand).rejects(sdkError(ExecutionAlreadyExists, 'Execution Already Exists'));
    const r = await run(['start', inputFile, '--name', 'nightly', '--state-machine-arn', STATE_MACHINE_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('an execution named "nightly" already exists with another input or has already finished');
  });

  it('says when the stack is not deployed in the region', async () => {
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id WebrunSfn does not exist'), { name: 'ValidationError' }));
    const r = await run(['start', inputFile, '--region', 'us-west-2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('stack WebrunSfn was not found in region us-west-2: deploy it (npx cdk deploy), or pass --stack <name>, --region <region> or --state-machine-arn <arn>');
  });

  it('names the state machine that does not exist', async () => {
    sfn.on(StartExecutionCommand).rejects(sdkError(StateMachineDoesNotExist, 'State Machine Does Not Exist'));
    const r = await run(['start', inputFile, '--state-machine-arn', STATE_MACHINE_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`state machine ${STATE_MACHINE_ARN} does not exist in region ${REGION}`);
  });

  it('tells how to configure credentials when there are none', async () => {
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    const r = await run(['start', inputFile, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no AWS credentials were found: run `aws configure` or `aws sso login');
    expect(JSON.parse(r.stdout).error.name).toBe('CredentialsProviderError');
  });

  it('tells to set a region when none is configured', async () => {
    cfn.on(DescribeStacksCommand).rejects(new Error('Region is missing'));
    expect((await run(['start', inputFile])).stderr).toContain('no AWS region is set: pass --region <region> or set AWS_REGION');
  });

  it('--follow follows the new execution to its end and exits with its outcome', async () => {
    sfn.on(StartExecutionCommand).resolves(started);
    sfn.on(GetExecutionHistoryCommand).resolves({ events: failedHistory().reverse() });
    sfn.on(DescribeExecutionCommand).resolves(describeFailed);
    const r = await run(['start', inputFile, '--follow', '--state-machine-arn', STATE_MACHINE_ARN, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ executionArn: EXECUTION_ARN, status: 'FAILED', error: { name: 'Webrun.TaskFailed' }, sessionId: 's-1' });
    expect(JSON.parse(r.stdout)).not.toHaveProperty('console');
    // Once for the one execution, though it was started and then followed.
    expect(r.stderr.split(CONSOLE_URL)).toHaveLength(2);
  });
});

describe('the console link', () => {
  it('is the execution\'s page on its partition\'s console, in the ARN\'s region', () => {
    expect(executionConsoleUrl(EXECUTION_ARN)).toBe(CONSOLE_URL);
    const cn = 'arn:aws-cn:states:cn-north-1:123456789012:execution:WebrunWorkflow:run-1';
    expect(executionConsoleUrl(cn)).toBe(`https://cn-north-1.console.amazonaws.cn/states/home?region=cn-north-1#/v2/executions/details/${cn}`);
    const gov = 'arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:WebrunWorkflow:run-1';
    expect(executionConsoleUrl(gov)).toBe(`https://us-gov-west-1.console.amazonaws-us-gov.com/states/home?region=us-gov-west-1#/v2/executions/details/${gov}`);
  });

  it('is not printed for a partition whose console this command cannot know, nor for a state machine ARN', () => {
    expect(executionConsoleUrl('arn:aws-iso:states:us-iso-east-1:123456789012:execution:WebrunWorkflow:run-1')).toBeUndefined();
    expect(executionConsoleUrl(STATE_MACHINE_ARN)).toBeUndefined();
    expect(executionConsoleUrl('not an arn')).toBeUndefined();
  });

  it('follow of an execution in an isolated partition prints no link and still follows it', async () => {
    const iso = 'arn:aws-iso:states:us-iso-east-1:123456789012:execution:WebrunWorkflow:run-1';
    sfn.on(GetExecutionHistoryCommand).resolves({ events: succeededHistory().reverse() });
    sfn.on(DescribeExecutionCommand).resolves(describeSucceeded);
    const r = await run(['follow', iso]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('console');
    expect(r.stderr.split('\n')[1]).toBe('  session s-1 started (1 task)');
  });
});

describe('follow', () => {
  it('prints the local runner progress lines from the history, polling until the execution ends', async () => {
    const all = succeededHistory();
    // First poll: the first 13 events; second poll: the rest (newest first, as the API pages them).
    sfn.on(GetExecutionHistoryCommand).resolvesOnce({ events: all.slice(0, 13).reverse() }).resolves({ events: [...all].reverse() });
    sfn.on(DescribeExecutionCommand).resolves(describeSucceeded);
    const sleep = vi.fn(async () => {});
    const r = await run(['follow', EXECUTION_ARN, '--interval', '5'], { sleep });
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')).toEqual([
      `webrun-sfn: following ${EXECUTION_ARN}`,
      `  console: ${CONSOLE_URL}`,
      '  session s-1 started (1 task)',
      '  task 1/1 sent: "Open the page"',
      '  task 1/1 pending, polling (at most 15 polls)',
      '  task 1/1 completed in 13.0 s',
      '  session s-1 terminated',
      '✔ succeeded: 1 task(s) completed at 2030-01-01T09:00:30.000Z',
      '',
    ]);
    expect(JSON.parse(r.stdout)).toEqual(OUTPUT);
    expect(sleep).toHaveBeenCalledTimes(1);
    expect(sleep).toHaveBeenCalledWith(5000, undefined);
    expect(r.regions.sfn).toEqual([REGION]);
  });

  it('shows retries and the caught failure, then exits 1 with the readable cause', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: failedHistory().reverse() });
    sfn.on(DescribeExecutionCommand).resolves(describeFailed);
    const r = await run(['follow', EXECUTION_ARN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('  retrying "Send task" after Webrun.RateLimited');
    expect(r.stderr).toContain('  "Send task" failed: Webrun.TaskFailed');
    expect(r.stderr).toContain('  session s-1 terminated');
    expect(r.stderr).toContain('✘ failed: Webrun.TaskFailed\n  Task 1 failed: the page did not load (task 1); 0 completed result(s) kept in the cause.');
    expect(r.stdout).toBe('');
  });

  it('follows a redriven execution past its first end until the redriven run ends (same ARN, the history goes on)', async () => {
    const first = failedHistory();
    const lastId = first[first.length - 1].id!;
    const redriven = [
      { type: 'ExecutionRedriven', id: lastId + 1, timestamp: new Date('2030-01-01T10:00:00Z'), executionRedrivenEventDetails: { redriveCount: 1 } },
      { type: 'TaskStateEntered', id: lastId + 2, timestamp: new Date('2030-01-01T10:00:01Z'), stateEnteredEventDetails: { name: StateNames.start, input: '{}' } },
    ] as HistoryEvent[];
    const ended = { type: 'ExecutionFailed', id: lastId + 3, timestamp: new Date('2030-01-01T10:00:02Z'), executionFailedEventDetails: { error: 'SessionStopped', cause: 'redriven' } } as HistoryEvent;
    sfn.on(GetExecutionHistoryCommand)
      .resolvesOnce({ events: [...first, ...redriven].reverse() })
      .resolves({ events: [...first, ...redriven, ended].reverse() });
    sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), error: 'SessionStopped', cause: 'redriven' } as never);
    const sleep = vi.fn(async () => {});
    const r = await run(['follow', EXECUTION_ARN], { sleep });
    // It polled again after the first end instead of stopping there.
    expect(sleep).toHaveBeenCalledTimes(1);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('✘ failed: SessionStopped');
  });

  it('names the steps when the history holds no execution data', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: succeededHistory(false).reverse() });
    sfn.on(DescribeExecutionCommand).resolves({ ...(describeSucceeded as object), output: undefined, outputDetails: { included: false } } as never);
    const r = await run(['follow', EXECUTION_ARN, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('(the history holds no execution data: showing the steps only)');
    expect(r.stderr).toContain('  → Send task\n  → Poll task\n  → Terminate session\n');
    expect(r.stderr).toContain('the output is not readable here');
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'SUCCEEDED', outputIncluded: false });
  });

  it('a timed-out execution exits 1', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [{ id: 2, type: 'ExecutionTimedOut', timestamp: new Date() }, { id: 1, type: 'ExecutionStarted', timestamp: new Date() }] });
    sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), status: 'TIMED_OUT', error: undefined, cause: undefined } as never);
    const r = await run(['follow', EXECUTION_ARN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('✘ timed out: States.Timeout');
  });

  it('Ctrl-C stops following, not the execution', async () => {
    const controller = new AbortController();
    sfn.on(GetExecutionHistoryCommand).resolves({ events: succeededHistory().slice(0, 5).reverse() });
    const r = await run(['follow', EXECUTION_ARN], { signal: controller.signal, sleep: async () => controller.abort() });
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('stopped following; the execution goes on');
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
  });

  it('Ctrl-C with --json still prints one object on stdout: the execution, still running', async () => {
    const controller = new AbortController();
    sfn.on(GetExecutionHistoryCommand).resolves({ events: succeededHistory().slice(0, 8).reverse() });
    const r = await run(['follow', EXECUTION_ARN, '--json'], { signal: controller.signal, sleep: async () => controller.abort() });
    expect(r.code).toBe(130);
    expect(JSON.parse(r.stdout)).toMatchObject({ executionArn: EXECUTION_ARN, name: 'run-1', status: 'RUNNING', stopDate: null });
  });

  it('start --follow --json interrupted by Ctrl-C prints the started execution\'s ARN in its one JSON object', async () => {
    const controller = new AbortController();
    sfn.on(StartExecutionCommand).resolves(started);
    sfn.on(GetExecutionHistoryCommand).resolves({ events: succeededHistory().slice(0, 8).reverse() });
    const r = await run(['start', inputFile, '--follow', '--json', '--state-machine-arn', STATE_MACHINE_ARN], { signal: controller.signal, sleep: async () => controller.abort() });
    expect(r.code).toBe(130);
    expect(JSON.parse(r.stdout)).toMatchObject({ executionArn: EXECUTION_ARN, status: 'RUNNING', startDate: '2030-01-01T09:00:00.000Z' });
  });

  it('names an execution that does not exist', async () => {
    sfn.on(GetExecutionHistoryCommand).rejects(sdkError(ExecutionDoesNotExist, 'Execution Does Not Exist'));
    const r = await run(['follow', EXECUTION_ARN, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`execution ${EXECUTION_ARN} does not exist in region ${REGION}`);
    expect(JSON.parse(r.stdout).error).toEqual({ name: 'ExecutionDoesNotExist', cause: expect.stringContaining(EXECUTION_ARN) });
  });

  it('stops at a region that contradicts the ARN, and at a string that is no execution ARN, before calling AWS', async () => {
    const mismatch = await run(['follow', EXECUTION_ARN, '--region', 'us-east-1']);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain(`the execution is in region ${REGION} but --region says us-east-1`);
    const notArn = await run(['follow', STATE_MACHINE_ARN, '--json']);
    expect(notArn.code).toBe(2);
    expect(notArn.stderr).toContain('is not a Step Functions execution ARN');
    // Caught before any AWS call: an input mistake, named as every other one.
    expect(JSON.parse(notArn.stdout).error).toEqual({ name: 'Webrun.InvalidInput', cause: expect.stringContaining('is not a Step Functions execution ARN') });
    expect(sfn.calls()).toHaveLength(0);
  });
});

describe('result', () => {
  it('prints the output of a succeeded execution', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: EXECUTION_ARN }).resolves(describeSucceeded);
    const r = await run(['result', EXECUTION_ARN]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(OUTPUT);
  });

  describe('stored results', () => {
    const stored = { message: 'a long page'.repeat(2_000) };
    const body = JSON.stringify(stored);
    const ref = { uri: 's3://webrun-results-bucket/WebrunWorkflow/run-1/task-0.json', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
    const withRef = { sessionId: 's-1', tasks: [{ index: 0, taskId: 't-1', status: 'completed', resultRef: ref }] };
    const describeWithRef = { ...(describeSucceeded as object), output: JSON.stringify(withRef) } as never;

    it('reads a stored result back from the result bucket and prints it in place of its reference', async () => {
      sfn.on(DescribeExecutionCommand).resolves(describeWithRef);
      s3.on(GetObjectCommand, { Bucket: 'webrun-results-bucket', Key: 'WebrunWorkflow/run-1/task-0.json' }).resolves({ Body: { transformToString: async () => body } } as never);
      const r = await run(['result', EXECUTION_ARN]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ sessionId: 's-1', tasks: [{ index: 0, taskId: 't-1', status: 'completed', result: stored }] });
    });

    it('--refs prints the reference as it is, without reading S3', async () => {
      sfn.on(DescribeExecutionCommand).resolves(describeWithRef);
      const r = await run(['result', EXECUTION_ARN, '--refs']);
      expect(JSON.parse(r.stdout)).toEqual(withRef);
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    });

    it('start --follow --refs leaves the references too, as OPERATIONS says for a caller without s3:GetObject', async () => {
      sfn.on(StartExecutionCommand).resolves({ executionArn: EXECUTION_ARN, startDate: new Date() });
      sfn.on(GetExecutionHistoryCommand).resolves({ events: succeededHistory().reverse() });
      sfn.on(DescribeExecutionCommand).resolves(describeWithRef);
      const r = await run(['start', inputFile, '--follow', '--refs', '--state-machine-arn', STATE_MACHINE_ARN]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.slice(r.stdout.indexOf('{')))).toEqual(withRef);
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    });

    it('a failure\'s report gets its stored results read back too (the cause rewritten, --refs leaves it), and they go to stdout', async () => {
      const cause = JSON.stringify({ message: 'Task 2 failed', sessionId: 's-1', taskIndex: 1, completed: withRef.tasks, sessionEnded: true });
      sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), cause } as never);
      s3.on(GetObjectCommand, { Bucket: 'webrun-results-bucket', Key: 'WebrunWorkflow/run-1/task-0.json' }).resolves({ Body: { transformToString: async () => body } } as never);
      const resolved = [{ index: 0, taskId: 't-1', status: 'completed', result: stored }];
      const json = await run(['result', EXECUTION_ARN, '--json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(JSON.parse(json.stdout).error.cause)).toEqual({ message: 'Task 2 failed', sessionId: 's-1', taskIndex: 1, completed: resolved, sessionEnded: true });
      const human = await run(['result', EXECUTION_ARN]);
      expect(human.stderr).toContain('Task 2 failed (task 2); 1 completed result(s) kept in the cause.');
      expect(JSON.parse(human.stdout)).toEqual({ sessionId: 's-1', completed: resolved });
      const refs = await run(['result', EXECUTION_ARN, '--refs', '--json']);
      expect(JSON.parse(refs.stdout).error.cause).toBe(cause);
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(2);
    });

    it('a stored result that no longer matches its digest is refused', async () => {
      sfn.on(DescribeExecutionCommand).resolves(describeWithRef);
      s3.on(GetObjectCommand).resolves({ Body: { transformToString: async () => '{"tampered":true}' } } as never);
      const r = await run(['result', EXECUTION_ARN]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('does not match its reference');
    });

    it('an expired result says so and points at --refs', async () => {
      sfn.on(DescribeExecutionCommand).resolves(describeWithRef);
      s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} }));
      const r = await run(['result', EXECUTION_ARN]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('expire after resultRetentionDays');
      expect(r.stderr).toContain('--refs');
    });
  });

  it('--json prints the summary; a failed execution exits 1 with its error and session', async () => {
    sfn.on(DescribeExecutionCommand).resolves(describeFailed);
    const r = await run(['result', EXECUTION_ARN, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      executionArn: EXECUTION_ARN,
      name: 'run-1',
      status: 'FAILED',
      startDate: '2030-01-01T09:00:00.000Z',
      stopDate: '2030-01-01T09:00:20.000Z',
      error: { name: 'Webrun.TaskFailed', cause: FAILURE_CAUSE },
      sessionId: 's-1',
    });
  });

  it('a running execution is no failure: it says how to wait for it', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ ...(describeSucceeded as object), status: 'RUNNING', output: undefined, stopDate: undefined } as never);
    const r = await run(['result', EXECUTION_ARN]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`running since 2030-01-01T09:00:00.000Z: \`webrun-sfn follow ${EXECUTION_ARN}\` waits for it`);
    // --json: stopDate is there, null, as the documented shape has it.
    const json = JSON.parse((await run(['result', EXECUTION_ARN, '--json'])).stdout);
    expect(json).toHaveProperty('stopDate', null);
  });

  it('an execution pending its redrive is about to run again: exit 0, as a running one', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), status: 'PENDING_REDRIVE', stopDate: undefined } as never);
    const r = await run(['result', EXECUTION_ARN]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`pending redrive since 2030-01-01T09:00:00.000Z: \`webrun-sfn follow ${EXECUTION_ARN}\` waits for it`);
  });

  it('an aborted execution exits 1', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [] });
    sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), status: 'ABORTED', error: undefined, cause: undefined } as never);
    const r = await run(['result', EXECUTION_ARN, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toEqual({ name: 'States.Aborted', cause: 'The execution was stopped before it finished.' });
  });

  describe('a run that ended without its failure step keeps the results it completed, read from its history', () => {
    const report = (message: string) => ({ message, sessionId: 's-1', taskIndex: 1, completed: [KEPT_RESULT], sessionEnded: null });

    it('stopped with a cause: States.Aborted, that cause as the message, the results from the newest state data', async () => {
      sfn.on(GetExecutionHistoryCommand).resolves({ events: endedEarlyHistory({ type: 'ExecutionAborted' }).reverse() });
      sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), status: 'ABORTED', error: undefined, cause: 'nightly window over' } as never);
      const r = await run(['result', EXECUTION_ARN, '--json']);
      expect(r.code).toBe(1);
      const summary = JSON.parse(r.stdout);
      expect(summary).toMatchObject({ status: 'ABORTED', error: { name: 'States.Aborted' }, sessionId: 's-1' });
      expect(JSON.parse(summary.error.cause)).toEqual(report('nightly window over'));
      expect(sfn.commandCalls(GetExecutionHistoryCommand)[0].args[0].input).toMatchObject({ executionArn: EXECUTION_ARN, reverseOrder: true, includeExecutionData: true });
      const human = await run(['result', EXECUTION_ARN]);
      expect(human.stderr).toContain('✘ aborted: States.Aborted\n  nightly window over (task 2); 1 completed result(s) kept in the cause.');
      // A message that ends a sentence of its own does not stop the one it is part of.
      sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), status: 'ABORTED', error: undefined, cause: undefined } as never);
      expect((await run(['result', EXECUTION_ARN])).stderr).toContain('The execution was stopped before it finished (task 2); 1 completed result(s) kept in the cause.\n');
      expect(JSON.parse(human.stdout)).toEqual({ sessionId: 's-1', completed: [KEPT_RESULT] });
    });

    it('past a quota (States.Runtime), its history read page by page until state data holds the run', async () => {
      const events = endedEarlyHistory({ type: 'ExecutionFailed', executionFailedEventDetails: { error: 'States.Runtime', cause: 'The execution reached the maximum number of history events (25000).' } }).reverse();
      sfn.on(GetExecutionHistoryCommand).resolvesOnce({ events: events.slice(0, 1), nextToken: 'page-2' }).resolves({ events: events.slice(1) });
      sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), error: 'States.Runtime', cause: 'The execution reached the maximum number of history events (25000).' } as never);
      const r = await run(['result', EXECUTION_ARN, '--json']);
      expect(JSON.parse(JSON.parse(r.stdout).error.cause)).toEqual(report('The execution reached the maximum number of history events (25000).'));
      expect(sfn.commandCalls(GetExecutionHistoryCommand).map((c) => c.args[0].input.nextToken)).toEqual([undefined, 'page-2']);
    });

    it('follow, at the execution timeout: from the history it followed, without reading it again', async () => {
      sfn.on(GetExecutionHistoryCommand).resolves({ events: endedEarlyHistory({ type: 'ExecutionTimedOut' }).reverse() });
      sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), status: 'TIMED_OUT', error: undefined, cause: undefined } as never);
      const r = await run(['follow', EXECUTION_ARN, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(JSON.parse(r.stdout).error.cause)).toEqual(report('The execution reached its timeout.'));
      expect(sfn.commandCalls(GetExecutionHistoryCommand)).toHaveLength(1);
    });

    it('a history it may not read leaves the cause as Step Functions gave it, and says why', async () => {
      sfn.on(GetExecutionHistoryCommand).rejects(Object.assign(new Error('User is not authorized to perform: states:GetExecutionHistory'), { name: 'AccessDeniedException' }));
      sfn.on(DescribeExecutionCommand).resolves({ ...(describeFailed as object), status: 'TIMED_OUT', error: undefined, cause: undefined } as never);
      const r = await run(['result', EXECUTION_ARN, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).error).toEqual({ name: 'States.Timeout', cause: 'The execution reached its timeout.' });
      expect(r.stderr).toContain('the results it completed could not be read from its history');
    });

    it('a failure the workflow reported itself is left as it is: no history read', async () => {
      sfn.on(DescribeExecutionCommand).resolves(describeFailed);
      const r = await run(['result', EXECUTION_ARN, '--json']);
      expect(JSON.parse(r.stdout).error).toEqual({ name: 'Webrun.TaskFailed', cause: FAILURE_CAUSE });
      expect(sfn.commandCalls(GetExecutionHistoryCommand)).toHaveLength(0);
    });
  });

  it('a stored result that does not match its reference is reported as itself, not as an AWS error', async () => {
    const ref = { uri: 's3://webrun-results/WebrunWorkflow/x/task-0.json', bytes: 10, sha256: 'a'.repeat(64) };
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', output: JSON.stringify({ sessionId: 's', tasks: [{ index: 0, taskId: 't', status: 'completed', resultRef: ref }] }) } as never);
    s3.on(GetObjectCommand).resolves({ Body: { transformToString: async () => '{"tampered":true}' } } as never);
    const r = await run(['result', EXECUTION_ARN, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`webrun-sfn: The stored result ${ref.uri} does not match its reference`);
    expect(r.stderr).not.toContain('AWS error');
    expect(JSON.parse(r.stdout).error.name).toBe('Webrun.ConfigError');
  });

  it('names an unknown ARN', async () => {
    sfn.on(DescribeExecutionCommand).rejects(sdkError(InvalidArn, 'Invalid Arn'));
    const r = await run(['result', EXECUTION_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`"${EXECUTION_ARN}" is not a valid Step Functions ARN: Invalid Arn`);
  });

  it('says when AWS refuses access', async () => {
    sfn.on(DescribeExecutionCommand).rejects(Object.assign(new Error('User is not authorized to perform: states:DescribeExecution'), { name: 'AccessDeniedException' }));
    const r = await run(['result', EXECUTION_ARN]);
    expect(r.stderr).toContain(`access denied to ${EXECUTION_ARN}`);
  });
});

describe('stop', () => {
  it('stops the execution with a cause', async () => {
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date('2030-01-01T09:01:00Z') });
    const r = await run(['stop', EXECUTION_ARN, '--cause', 'wrong input', '--json']);
    expect(r.code).toBe(0);
    expect(sfn.commandCalls(StopExecutionCommand)[0].args[0].input).toEqual({ executionArn: EXECUTION_ARN, cause: 'wrong input' });
    expect(JSON.parse(r.stdout)).toEqual({ executionArn: EXECUTION_ARN, status: 'ABORTED', stopDate: '2030-01-01T09:01:00.000Z' });
    expect(r.stderr).toContain('the session cleanup terminates its webrun session');
    expect(r.stderr).toContain(`the results it completed: npx webrun-sfn result ${EXECUTION_ARN}`);
  });

  it('names an execution that does not exist', async () => {
    sfn.on(StopExecutionCommand).rejects(sdkError(ExecutionDoesNotExist, 'Execution Does Not Exist'));
    const r = await run(['stop', EXECUTION_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`execution ${EXECUTION_ARN} does not exist`);
  });
});

describe('list', () => {
  it('a network error names the service that could not be reached (CloudFormation, for the stack)', async () => {
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('getaddrinfo ENOTFOUND cloudformation.eu-west-1.amazonaws.com'), { code: 'ENOTFOUND' }));
    const r = await run(['list', '--region', REGION, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot reach the CloudFormation endpoint in region ${REGION}`);
    expect(JSON.parse(r.stdout).error.name).toBe('NetworkError');
  });

  const item = (n: number, status = 'FAILED') => ({ executionArn: `${EXECUTION_ARN}-${n}`, stateMachineArn: STATE_MACHINE_ARN, name: `run-${n}`, status, startDate: new Date(Date.UTC(2030, 0, 1, 9, n)) });

  it('lists the newest executions with a status filter, across pages, up to --max', async () => {
    cfn.on(DescribeStacksCommand).resolves(stackWithOutput);
    sfn.on(ListExecutionsCommand, { nextToken: undefined }).resolves({ executions: [item(1), item(2)], nextToken: 'n' } as never);
    sfn.on(ListExecutionsCommand, { nextToken: 'n' }).resolves({ executions: [item(3)], nextToken: 'm' } as never);
    const r = await run(['list', '--status', 'failed', '--max', '3', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).executions.map((e: { name: string }) => e.name)).toEqual(['run-1', 'run-2', 'run-3']);
    const calls = sfn.commandCalls(ListExecutionsCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([
      { stateMachineArn: STATE_MACHINE_ARN, statusFilter: 'FAILED', maxResults: 3, nextToken: undefined },
      { stateMachineArn: STATE_MACHINE_ARN, statusFilter: 'FAILED', maxResults: 1, nextToken: 'n' },
    ]);
  });

  it('prints one line per execution', async () => {
    sfn.on(ListExecutionsCommand).resolves({ executions: [item(1, 'SUCCEEDED')] } as never);
    const r = await run(['list', '--state-machine-arn', STATE_MACHINE_ARN]);
    expect(r.stdout).toBe(`SUCCEEDED       2030-01-01T09:01:00.000Z  -                         ${EXECUTION_ARN}-1\n`);
  });

  it('rejects an unknown status', async () => {
    const r = await run(['list', '--status', 'DONE', '--state-machine-arn', STATE_MACHINE_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--status must be one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, got "DONE"');
  });

  it('refuses PENDING_REDRIVE before calling AWS (ListExecutions refuses it with a state machine ARN)', async () => {
    sfn.on(ListExecutionsCommand).resolves({ executions: [] } as never);
    const r = await run(['list', '--status', 'PENDING_REDRIVE', '--state-machine-arn', STATE_MACHINE_ARN, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--status must be one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, got "PENDING_REDRIVE"');
    expect(sfn.commandCalls(ListExecutionsCommand)).toHaveLength(0);
  });
});

describe('usage', () => {
  it.each([
    [[], 2, 'Usage: npx webrun-sfn <command>'],
    [['--help'], 0, 'Usage: npx webrun-sfn <command>'],
    [['deploy'], 2, 'unknown command "deploy"'],
    [['result'], 2, '`result` needs <executionArn>'],
    [['list', 'extra'], 2, '`list` takes no argument'],
    [['result', EXECUTION_ARN, '--follow'], 2, '--follow does not apply to `result`'],
    [['follow', EXECUTION_ARN, '--interval', 'soon'], 2, '--interval must be a number of seconds from 0.1 to 3600, got "soon"'],
    // Past 2^31-1 ms setTimeout fires at once: such an interval would poll every millisecond.
    [['follow', EXECUTION_ARN, '--interval', '3000000'], 2, '--interval must be a number of seconds from 0.1 to 3600, got "3000000"'],
    [['start', inputFile, '--bogus'], 2, "Unknown option '--bogus'"],
  ])('%j exits %i', async (argv, code, message) => {
    const r = await run(argv as string[]);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
    expect(sfn.calls()).toHaveLength(0);
  });
});

describe('local', () => {
  it('hands everything after `local` to the local runner', async () => {
    const localMain = vi.fn(async () => 0);
    const r = await run(['local', 'input.json', '--json', '--wait-scale', '0'], { localMain });
    expect(r.code).toBe(0);
    expect(localMain).toHaveBeenCalledWith(expect.objectContaining({ argv: ['input.json', '--json', '--wait-scale', '0'], env: {} }));
    expect(sfn.calls()).toHaveLength(0);
  });

  it('is cli/local.ts itself (its usage and exit codes)', async () => {
    const r = await run(['local', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Usage: npm start -- <input.json | ->');
    expect((await run(['local'])).code).toBe(2);
  });

  it('runs as the package\'s `webrun-sfn` bin in a child process (the tsx loader, the exit code, one JSON line)', async () => {
    const bin = path.join(__dirname, '..', '..', 'bin', 'webrun-sfn.js');
    const input = path.join(__dirname, '..', '..', 'examples', 'single-task.json');
    const env = { ...process.env, WEBRUN_API_KEY: '', WEBRUN_BASE_URL: '' };
    const [ok, usage] = await Promise.all([
      runProcess(process.execPath, [bin, 'local', input, '--json', '--wait-scale', '0'], { env }),
      runProcess(process.execPath, [bin, 'bogus'], { env }),
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout.trim()).status).toBe('SUCCEEDED');
    expect(usage.status).toBe(2);
  });
});

describe('help and errors, the same for every command', () => {
  it('`<command> --help` prints that command\'s usage, not the whole list', async () => {
    const r = await run(['follow', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr.startsWith('Usage: npx webrun-sfn follow <executionArn> [options]')).toBe(true);
    expect(r.stderr).toContain('--interval <s>');
    expect(r.stderr).not.toContain('--cause <text>');
    expect((await run(['list', '-h'])).stderr).toContain('--state-machine-arn <arn>');
  });

  it('`batch --help` and `batch <command> --help` print the batch commands, not the whole list', async () => {
    for (const argv of [['batch', '--help'], ['batch', 'start', '--help'], ['batch', 'results', '-h']]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.stderr.startsWith('Usage: npx webrun-sfn batch <start | status | results> [options]')).toBe(true);
      expect(r.stderr).toContain('batch start <items> --template <t.json>');
      expect(r.stderr).toContain('--refs');
      expect(r.stderr).not.toContain('follow <executionArn>');
    }
    expect((await run(['batch'])).code).toBe(2);
  });

  it.each([
    [['follow', '--json']],
    [['bogus', '--json']],
    [['list', '--cause', 'x', '--json']],
  ])('%j: a usage mistake is {"error": {"name": "Webrun.InvalidInput", "cause"}} on stdout, as the local command says it', async (argv) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({ error: { name: 'Webrun.InvalidInput', cause: expect.any(String) } });
  });
});

