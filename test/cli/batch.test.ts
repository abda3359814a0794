/** `npx webrun-sfn batch start|status|results` against mocked AWS clients (no AWS account). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, DescribeMapRunCommand, DescribeStateMachineCommand, GetExecutionHistoryCommand, ListMapRunsCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { main, type CliIo } from '../../cli/main';
import { builtBatchDefinition } from '../../local/batch-workflow';
import { endedEarlyHistory, KEPT_RESULT } from './fixtures';

const sfn = mockClient(SFNClient);
const cfn = mockClient(CloudFormationClient);
const s3 = mockClient(S3Client);

const REGION = 'eu-west-1';
const BATCH_SM = `arn:aws:states:${REGION}:123456789012:stateMachine:WebrunBatch`;
const BATCH_ARN = `arn:aws:states:${REGION}:123456789012:execution:WebrunBatch:batch-1`;
const MAP_RUN = `arn:aws:states:${REGION}:123456789012:mapRun:WebrunBatch/Items:0f1e2d3c-aaaa-bbbb-cccc-123456789abc`;
const BUCKET = 'webrun-results-bucket';

const dir = mkdtempSync(path.join(tmpdir(), 'webrun-batch-aws-'));
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};
const TEMPLATE = { tasks: [{ taskDetails: 'Read the price of {{sku}}' }] };
const templateFile = write('template.json', JSON.stringify(TEMPLATE));
const ITEMS = 'sku\nA1\nB2\nC3\n';
const itemsFile = write('items.csv', ITEMS);

/** The deployed definition, with the result bucket's real name where the built copy has a placeholder. */
const DEFINITION = JSON.stringify(builtBatchDefinition()).replace(/ref-WorkflowResults[0-9A-F]+/g, BUCKET);

async function run(argv: string[], extra: Partial<CliIo> & { progressStream?: { isTTY: boolean; columns: number; write: (t: string) => boolean } } = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main({
    argv,
    env: {},
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: async () => '',
    sleep: async () => {},
    cwd: dir,
    clients: {
      sfn: (region) => new SFNClient({ region: region ?? 'us-east-1' }),
      cloudFormation: (region) => new CloudFormationClient({ region: region ?? 'us-east-1' }),
      s3: (region) => new S3Client({ region: region ?? 'us-east-1' }),
    },
    ...extra,
  } as CliIo);
  return { code, stdout, stderr };
}

const stack = (outputs: Array<{ OutputKey: string; OutputValue: string }>) =>
  ({ Stacks: [{ StackName: 'WebrunSfn', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: outputs }] }) as never;
const body = (value: unknown) => ({ Body: { transformToString: async () => JSON.stringify(value) } }) as never;

beforeEach(() => {
  sfn.reset();
  cfn.reset();
  s3.reset();
});

describe('batch start', () => {
  it('checks every item, then uploads the items to the result bucket and starts the batch with them', async () => {
    cfn.on(DescribeStacksCommand).resolves(stack([{ OutputKey: 'StateMachineArn', OutputValue: 'x' }, { OutputKey: 'BatchStateMachineArn', OutputValue: BATCH_SM }]));
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: BATCH_SM }).resolves({ definition: DEFINITION } as never);
    s3.on(PutObjectCommand).resolves({});
    sfn.on(StartExecutionCommand).resolves({ executionArn: BATCH_ARN, startDate: new Date() });
    const r = await run(['batch', 'start', itemsFile, '--template', templateFile, '--concurrency', '3', '--tolerate', '5', '--name', 'batch-1', '--region', REGION]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(BATCH_ARN);
    const [put] = s3.commandCalls(PutObjectCommand);
    // The items as checked, as a JSON array: what the deployed batch reads is what was validated.
    expect(put.args[0].input).toMatchObject({ Bucket: BUCKET, Key: expect.stringMatching(/^batches\/batch-1\/items-[0-9a-f]{16}\.json$/), ContentType: 'application/json' });
    expect(JSON.parse(String(put.args[0].input.Body))).toEqual([{ sku: 'A1' }, { sku: 'B2' }, { sku: 'C3' }]);
    const [start] = sfn.commandCalls(StartExecutionCommand);
    expect(start.args[0].input.stateMachineArn).toBe(BATCH_SM);
    expect(start.args[0].input.name).toBe('batch-1');
    expect(JSON.parse(start.args[0].input.input ?? '')).toEqual({
      items: { bucket: BUCKET, key: put.args[0].input.Key, format: 'json' },
      template: TEMPLATE,
      maxConcurrency: 3,
      toleratedFailurePercentage: 5,
    });
    expect(r.stderr).toContain('started a batch of 3 item(s)');
  });

  it('under `npm run cli`, the items and --template are read from the folder the command was typed in, which a missing file names', async () => {
    const typedIn = mkdtempSync(path.join(tmpdir(), 'webrun-batch-typed-'));
    writeFileSync(path.join(typedIn, 'items.csv'), ITEMS);
    writeFileSync(path.join(typedIn, 't.json'), JSON.stringify(TEMPLATE));
    const npm = { cwd: undefined, env: { INIT_CWD: typedIn, npm_lifecycle_script: 'tsx bin/cli.ts' } };
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: BATCH_SM }).resolves({ definition: DEFINITION } as never);
    s3.on(PutObjectCommand).resolves({});
    sfn.on(StartExecutionCommand).resolves({ executionArn: BATCH_ARN, startDate: new Date() });
    const r = await run(['batch', 'start', 'items.csv', '--template', 't.json', '--state-machine-arn', BATCH_SM], npm);
    expect(r.code).toBe(0);
    expect(JSON.parse(String(s3.commandCalls(PutObjectCommand)[0].args[0].input.Body))).toEqual([{ sku: 'A1' }, { sku: 'B2' }, { sku: 'C3' }]);
    const noTemplate = await run(['batch', 'start', 'items.csv', '--template', 'gone.json', '--state-machine-arn', BATCH_SM], npm);
    expect(noTemplate.code).toBe(2);
    expect(noTemplate.stderr).toContain(`gone.json (${path.join(typedIn, 'gone.json')})`);
    const noItems = await run(['batch', 'start', 'gone.csv', '--template', 't.json', '--state-machine-arn', BATCH_SM], npm);
    expect(noItems.code).toBe(2);
    expect(noItems.stderr).toContain(`gone.csv (${path.join(typedIn, 'gone.csv')})`);
  });

  it('a --name reused with other items uploads beside the first batch\'s items, not over them, and starts with another input', async () => {
    cfn.on(DescribeStacksCommand).resolves(stack([{ OutputKey: 'BatchStateMachineArn', OutputValue: BATCH_SM }]));
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: BATCH_SM }).resolves({ definition: DEFINITION } as never);
    s3.on(PutObjectCommand).resolves({});
    sfn.on(StartExecutionCommand).resolves({ executionArn: BATCH_ARN, startDate: new Date() });
    const other = write('other.csv', 'sku\nZ9\n');
    expect((await run(['batch', 'start', itemsFile, '--template', templateFile, '--name', 'nightly', '--region', REGION])).code).toBe(0);
    expect((await run(['batch', 'start', other, '--template', templateFile, '--name', 'nightly', '--region', REGION])).code).toBe(0);
    const keys = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key);
    expect(keys[0]).not.toBe(keys[1]);
    const inputs = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.input);
    // Another input under the same name: Step Functions refuses it (ExecutionAlreadyExists) instead of returning the first.
    expect(inputs[0]).not.toBe(inputs[1]);
    // The same items again: the same key and input, so a repeated start is the idempotent one.
    expect((await run(['batch', 'start', itemsFile, '--template', templateFile, '--name', 'nightly', '--region', REGION])).code).toBe(0);
    expect(s3.commandCalls(PutObjectCommand)[2].args[0].input.Key).toBe(keys[0]);
    expect(sfn.commandCalls(StartExecutionCommand)[2].args[0].input.input).toBe(inputs[0]);
  });

  it('uploads a CSV saved with a byte-order mark (as Excel writes it) without the mark in its first field name', async () => {
    cfn.on(DescribeStacksCommand).resolves(stack([{ OutputKey: 'BatchStateMachineArn', OutputValue: BATCH_SM }]));
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: BATCH_SM }).resolves({ definition: DEFINITION } as never);
    s3.on(PutObjectCommand).resolves({});
    sfn.on(StartExecutionCommand).resolves({ executionArn: BATCH_ARN, startDate: new Date() });
    const bom = write('excel.csv', `\uFEFFsku,qty\r\nA1,"1,5"\r\nB2,2\r\n`);
    const r = await run(['batch', 'start', bom, '--template', templateFile, '--name', 'batch-2', '--region', REGION]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(String(s3.commandCalls(PutObjectCommand)[0].args[0].input.Body))).toEqual([{ sku: 'A1', qty: '1,5' }, { sku: 'B2', qty: '2' }]);
  });

  it('refuses a template the batch state machine could not hold before uploading or starting anything (exit 2)', async () => {
    const large = write('large.json', JSON.stringify({ tasks: Array.from({ length: 8 }, () => ({ taskDetails: 'x'.repeat(19_000) })) }));
    const r = await run(['batch', 'start', itemsFile, '--template', large, '--state-machine-arn', BATCH_SM, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('a batch template may have at most 129024');
    expect(JSON.parse(r.stdout).error.name).toBe('Webrun.InvalidInput');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('refuses a bad item by its line before uploading or starting anything (exit 2)', async () => {
    const bad = write('bad.jsonl', '{"sku":"A1"}\n{"sku":"B2"}\n{"other":"C3"}\n');
    const r = await run(['batch', 'start', bad, '--template', templateFile, '--state-machine-arn', BATCH_SM, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad} line 3: tasks[0].taskDetails: has an unknown placeholder {{sku}}`);
    expect(r.stderr).toContain('nothing was uploaded or started');
    expect(JSON.parse(r.stdout).error.name).toBe('Webrun.InvalidInput');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('says how to enable batches when the stack has no batch state machine', async () => {
    cfn.on(DescribeStacksCommand).resolves(stack([{ OutputKey: 'StateMachineArn', OutputValue: 'x' }]));
    const r = await run(['batch', 'start', itemsFile, '--template', templateFile, '--region', REGION]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('has no BatchStateMachineArn output: set "batch": { "enabled": true }');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });

  it.each([
    [['batch', 'start', itemsFile], 'needs --template'],
    [['batch', 'start', itemsFile, '--template', templateFile, '--concurrency', '0', '--state-machine-arn', BATCH_SM], '--concurrency must be a whole number from 1 to 10000'],
    [['batch', 'start', itemsFile, '--template', templateFile, '--refs'], '--refs does not apply to `batch start`'],
    [['batch', 'status'], '`batch status` needs <batchArn>'],
    [['batch', 'stop', BATCH_ARN], 'unknown batch command "stop"'],
  ])('exits 2 for bad usage %j', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});

/** The batch state machine's definition (its ResultWriter), which tells a batch execution from a workflow run. */
const batchDefinition = () => sfn.on(DescribeStateMachineCommand, { stateMachineArn: BATCH_SM }).resolves({ definition: DEFINITION } as never);
const WORKFLOW_SM = `arn:aws:states:${REGION}:123456789012:stateMachine:WebrunWorkflow`;
const WORKFLOW_RUN = `arn:aws:states:${REGION}:123456789012:execution:WebrunWorkflow:run-1`;

describe('batch status', () => {
  beforeEach(batchDefinition);
  const counts = (over: Record<string, number>) => ({ itemCounts: { total: 200, running: 0, succeeded: 0, failed: 0, pending: 0, aborted: 0, timedOut: 0, resultsWritten: 0, ...over } }) as never;

  it('prints the Map Run\'s counts (total, running, succeeded, failed)', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: BATCH_ARN, status: 'RUNNING' } as never);
    sfn.on(ListMapRunsCommand, { executionArn: BATCH_ARN }).resolves({ mapRuns: [{ mapRunArn: MAP_RUN, executionArn: BATCH_ARN, stateMachineArn: BATCH_SM, startDate: new Date() }] });
    sfn.on(DescribeMapRunCommand, { mapRunArn: MAP_RUN }).resolves(counts({ running: 8, succeeded: 120, failed: 2, timedOut: 1, pending: 69 }));
    const r = await run(['batch', 'status', BATCH_ARN, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ executionArn: BATCH_ARN, status: 'RUNNING', mapRunArn: MAP_RUN, items: { total: 200, running: 8, succeeded: 120, failed: 3, pending: 69, aborted: 0 } });
    const text = await run(['batch', 'status', BATCH_ARN]);
    expect(text.stdout.trim()).toBe('RUNNING: 123/200 items done, 120 succeeded, 3 failed, 8 running');
  });

  it('a batch that failed before reading any item says why, without --follow too', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'FAILED', error: 'States.ItemReaderFailed', cause: 'Access Denied reading batches/b1/items.json' } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [] });
    const r = await run(['batch', 'status', BATCH_ARN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('States.ItemReaderFailed: Access Denied reading batches/b1/items.json');
  });

  it('--follow reports each change until the batch ends; exit 1 when it failed', async () => {
    sfn.on(DescribeExecutionCommand)
      .resolvesOnce({ status: 'RUNNING' } as never)
      .resolvesOnce({ status: 'RUNNING' } as never)
      .resolves({ status: 'FAILED', error: 'States.ExceedToleratedFailureThreshold', cause: 'The specified tolerated failure threshold was exceeded' } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [{ mapRunArn: MAP_RUN, executionArn: BATCH_ARN, stateMachineArn: BATCH_SM, startDate: new Date() }] });
    sfn.on(DescribeMapRunCommand)
      .resolvesOnce(counts({ running: 5, succeeded: 10 }))
      .resolvesOnce(counts({ running: 5, succeeded: 50, failed: 1 }))
      .resolves(counts({ succeeded: 50, failed: 1, aborted: 5 }));
    const r = await run(['batch', 'status', BATCH_ARN, '--follow']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('RUNNING: 10/200 items done, 10 succeeded, 0 failed, 5 running');
    expect(r.stderr).toContain('RUNNING: 51/200 items done, 50 succeeded, 1 failed, 5 running');
    expect(r.stderr).toMatch(/✘ batch failed: 56\/200 items done: 50 succeeded, 1 failed, 5 stopped, 144 not started/);
    expect(r.stderr).toContain('States.ExceedToleratedFailureThreshold');
  });

  it('refuses an execution of another state machine (a workflow run) as NotABatch, with and without --follow', async () => {
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: WORKFLOW_SM }).resolves({ definition: JSON.stringify({ StartAt: 'A', States: { A: { Type: 'Pass', End: true } } }) } as never);
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', stateMachineArn: WORKFLOW_SM, output: '{"sessionId":"s","tasks":[]}' } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [] });
    for (const argv of [['batch', 'status', WORKFLOW_RUN, '--json'], ['batch', 'status', WORKFLOW_RUN, '--follow', '--json']]) {
      const r = await run(argv);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout).error.name).toBe('NotABatch');
      expect(r.stderr).toContain(`${WORKFLOW_RUN} is not a batch`);
    }
  });

  it('--follow --json interrupted by Ctrl-C prints the last counts seen as its one object', async () => {
    const controller = new AbortController();
    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING', stateMachineArn: BATCH_SM } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [{ mapRunArn: MAP_RUN, executionArn: BATCH_ARN, stateMachineArn: BATCH_SM, startDate: new Date() }] });
    sfn.on(DescribeMapRunCommand).resolves(counts({ running: 5, succeeded: 10 }));
    const r = await run(['batch', 'status', BATCH_ARN, '--follow', '--json'], { signal: controller.signal, sleep: async () => controller.abort() });
    expect(r.code).toBe(130);
    expect(JSON.parse(r.stdout)).toMatchObject({ executionArn: BATCH_ARN, status: 'RUNNING', items: { total: 200, succeeded: 10, running: 5 } });
  });

  it('refuses an --interval past an hour before calling AWS (setTimeout would overflow and poll every millisecond)', async () => {
    const r = await run(['batch', 'status', BATCH_ARN, '--follow', '--interval', '3000000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--interval must be a number of seconds from 0.1 to 3600, got "3000000"');
    expect(sfn.calls()).toHaveLength(0);
  });

  it('--follow draws a live bar on a terminal', async () => {
    sfn.on(DescribeExecutionCommand).resolvesOnce({ status: 'RUNNING' } as never).resolves({ status: 'SUCCEEDED' } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [{ mapRunArn: MAP_RUN, executionArn: BATCH_ARN, stateMachineArn: BATCH_SM, startDate: new Date() }] });
    sfn.on(DescribeMapRunCommand).resolvesOnce(counts({ running: 4, succeeded: 100 })).resolves(counts({ succeeded: 200 }));
    let drawn = '';
    const r = await run(['batch', 'status', BATCH_ARN, '--follow'], { progressStream: { isTTY: true, columns: 120, write: (t) => ((drawn += t), true) } });
    expect(r.code).toBe(0);
    expect(drawn).toMatch(/200\/200 done \| 0 failed \| 0 running/);
    expect(r.stderr).toContain('✔ batch succeeded: 200/200 items done');
  });
});

describe('batch results', () => {
  beforeEach(batchDefinition);
  const input = (index: number, sku: string) => JSON.stringify({ template: TEMPLATE, run: { vars: { sku } }, item: { sku }, index, batchId: 'abc' });
  const output = { sessionId: 's-1', tasks: [{ index: 0, taskId: 't', status: 'completed', result: { message: 'price 9.99' } }] };
  const childCause = JSON.stringify({ ExecutionArn: 'arn:...:execution:WebrunWorkflow:abc-1-0', Status: 'FAILED', Error: 'Webrun.TaskFailed', Cause: '{"message":"Task 1 failed: Out of stock"}' });
  const manifest = { DestinationBucket: BUCKET, MapRunArn: MAP_RUN, ResultFiles: { SUCCEEDED: [{ Key: 'batch-results/run/SUCCEEDED_0.json', Size: 1 }], FAILED: [{ Key: 'batch-results/run/FAILED_0.json', Size: 1 }], PENDING: [{ Key: 'batch-results/run/PENDING_0.json', Size: 1 }] } };
  const files = () => {
    s3.on(GetObjectCommand, { Key: 'batch-results/run/SUCCEEDED_0.json' }).resolves(body([
      { Input: input(2, 'C3'), Output: JSON.stringify({ executionArn: 'x', output }), Status: 'SUCCEEDED' },
      { Input: input(0, 'A1'), Output: JSON.stringify({ executionArn: 'y', output }), Status: 'SUCCEEDED' },
    ]));
    s3.on(GetObjectCommand, { Key: 'batch-results/run/FAILED_0.json' }).resolves(body([{ Input: input(1, 'B2'), Status: 'FAILED', Error: 'States.TaskFailed', Cause: childCause }]));
    s3.on(GetObjectCommand, { Key: 'batch-results/run/PENDING_0.json' }).resolves(body([{ Input: input(3, 'D4') }]));
  };

  it('prints one JSON line per item, in the items\' order, from the ResultWriter manifest the batch\'s output names', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', output: JSON.stringify({ MapRunArn: MAP_RUN, ResultWriterDetails: { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' } }) } as never);
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' }).resolves(body(manifest));
    files();
    const r = await run(['batch', 'results', BATCH_ARN]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { item: { sku: 'A1' }, status: 'SUCCEEDED', output },
      { item: { sku: 'B2' }, status: 'FAILED', error: { name: 'Webrun.TaskFailed', cause: '{"message":"Task 1 failed: Out of stock"}' } },
      { item: { sku: 'C3' }, status: 'SUCCEEDED', output },
      { item: { sku: 'D4' }, status: 'PENDING' },
    ]);
    expect(r.stderr).toContain('4 item(s)');
  });

  it('--json prints one object: the batch\'s status, its counts and every item\'s result', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', output: JSON.stringify({ MapRunArn: MAP_RUN, ResultWriterDetails: { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' } }) } as never);
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' }).resolves(body(manifest));
    files();
    const r = await run(['batch', 'results', BATCH_ARN, '--json']);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ executionArn: BATCH_ARN, status: 'SUCCEEDED', items: { total: 4, succeeded: 2, failed: 1 } });
    expect(summary.results.map((x: { item: unknown }) => x.item)).toEqual([{ sku: 'A1' }, { sku: 'B2' }, { sku: 'C3' }, { sku: 'D4' }]);
  });

  it('an item whose stored result is gone keeps its references, said on stderr; every other item is still printed', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', output: JSON.stringify({ MapRunArn: MAP_RUN, ResultWriterDetails: { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' } }) } as never);
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' }).resolves(body(manifest));
    files();
    const ref = { uri: `s3://${BUCKET}/WebrunWorkflow/x/task-0.json`, bytes: 10, sha256: 'a'.repeat(64) };
    const stored = { sessionId: 's-1', tasks: [{ index: 0, taskId: 't', status: 'completed', resultRef: ref }] };
    s3.on(GetObjectCommand, { Key: 'batch-results/run/SUCCEEDED_0.json' }).resolves(body([
      { Input: input(2, 'C3'), Output: JSON.stringify({ executionArn: 'x', output: stored }), Status: 'SUCCEEDED' },
      { Input: input(0, 'A1'), Output: JSON.stringify({ executionArn: 'y', output }), Status: 'SUCCEEDED' },
    ]));
    s3.on(GetObjectCommand, { Key: 'WebrunWorkflow/x/task-0.json' }).rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }));
    const r = await run(['batch', 'results', BATCH_ARN]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.item.sku)).toEqual(['A1', 'B2', 'C3', 'D4']);
    expect(lines[2].output.tasks[0].resultRef).toEqual(ref);
    expect(r.stderr).toContain('item 3: its stored results were not read back, its references are printed');
  });

  it('refuses an execution of another state machine (a workflow run) as NotABatch, not as an empty batch', async () => {
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: WORKFLOW_SM }).resolves({ definition: JSON.stringify({ StartAt: 'A', States: { A: { Type: 'Pass', End: true } } }) } as never);
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', stateMachineArn: WORKFLOW_SM, output: '{"sessionId":"s","tasks":[]}' } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [] });
    const r = await run(['batch', 'results', WORKFLOW_RUN, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.name).toBe('NotABatch');
    expect(r.stderr).toContain(`${WORKFLOW_RUN} is not a batch`);
  });

  it('a batch with no results manifest says so with the batch\'s error, not "--refs" (which cannot help)', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'FAILED', stateMachineArn: BATCH_SM, error: 'States.ItemReaderFailed' } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [{ mapRunArn: MAP_RUN, executionArn: BATCH_ARN, stateMachineArn: BATCH_SM, startDate: new Date() }] });
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: BATCH_SM }).resolves({ definition: DEFINITION } as never);
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }));
    const r = await run(['batch', 'results', BATCH_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('(FAILED: States.ItemReaderFailed) has no results manifest at s3://');
    expect(r.stderr).not.toContain('--refs');
  });

  it('a result file the manifest lists that is gone is named with the batch, not given the advice about --refs', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', output: JSON.stringify({ MapRunArn: MAP_RUN, ResultWriterDetails: { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' } }) } as never);
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' }).resolves(body({ DestinationBucket: BUCKET, ResultFiles: { SUCCEEDED: [{ Key: 'batch-results/run/SUCCEEDED_0.json' }] } }));
    s3.on(GetObjectCommand, { Key: 'batch-results/run/SUCCEEDED_0.json' }).rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }));
    const r = await run(['batch', 'results', BATCH_ARN, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`the batch ${BATCH_ARN} (SUCCEEDED) lists the result file s3://${BUCKET}/batch-results/run/SUCCEEDED_0.json in its manifest, but it is gone`);
    expect(r.stderr).not.toContain('--refs');
    expect(JSON.parse(r.stdout).error.name).toBe('NoResults');
  });

  it('finds the manifest of a failed batch (no output) by its Map Run, and exits 1', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'FAILED', stateMachineArn: BATCH_SM, error: 'States.ExceedToleratedFailureThreshold' } as never);
    sfn.on(ListMapRunsCommand).resolves({ mapRuns: [{ mapRunArn: MAP_RUN, executionArn: BATCH_ARN, stateMachineArn: BATCH_SM, startDate: new Date() }] });
    sfn.on(DescribeStateMachineCommand, { stateMachineArn: BATCH_SM }).resolves({ definition: DEFINITION } as never);
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'batch-results/0f1e2d3c-aaaa-bbbb-cccc-123456789abc/manifest.json' }).resolves(body(manifest));
    files();
    const r = await run(['batch', 'results', BATCH_ARN]);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
  });

  it('an item whose workflow was stopped or timed out gets Step Functions\' name and keeps the results it completed, from its history', async () => {
    const iteration = `arn:aws:states:${REGION}:123456789012:execution:WebrunBatch/Items:iteration-4`;
    const stopped = `arn:aws:states:${REGION}:123456789012:execution:WebrunWorkflow:abc-4-0`;
    const timedOut = `arn:aws:states:${REGION}:123456789012:execution:WebrunWorkflow:abc-5-0`;
    sfn.on(DescribeExecutionCommand).resolves({ status: 'ABORTED', output: JSON.stringify({ ResultWriterDetails: { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' } }) } as never);
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' }).resolves(body({ DestinationBucket: BUCKET, ResultFiles: { FAILED: [{ Key: 'batch-results/run/FAILED_0.json' }] } }));
    s3.on(GetObjectCommand, { Key: 'batch-results/run/FAILED_0.json' }).resolves(body([
      // The batch was stopped: the iteration was aborted with no cause; the workflow it started is in its history.
      { ExecutionArn: iteration, Input: input(4, 'E5'), Status: 'ABORTED' },
      // The workflow reached its timeout: "Run item" failed with the workflow's description.
      { Input: input(5, 'F6'), Status: 'FAILED', Error: 'States.TaskFailed', Cause: JSON.stringify({ ExecutionArn: timedOut, Status: 'TIMED_OUT' }) },
    ]));
    sfn.on(GetExecutionHistoryCommand, { executionArn: iteration }).resolves({ events: [{ id: 3, type: 'TaskSubmitted', timestamp: new Date(), taskSubmittedEventDetails: { resourceType: 'states', resource: 'startExecution.sync:2', output: JSON.stringify({ ExecutionArn: stopped, StartDate: 1 }) } }] });
    sfn.on(GetExecutionHistoryCommand, { executionArn: stopped }).resolves({ events: endedEarlyHistory({ type: 'ExecutionAborted' }).reverse() });
    sfn.on(GetExecutionHistoryCommand, { executionArn: timedOut }).resolves({ events: endedEarlyHistory({ type: 'ExecutionTimedOut' }).reverse() });
    const r = await run(['batch', 'results', BATCH_ARN]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const report = (message: string) => ({ message, sessionId: 's-1', taskIndex: 1, completed: [KEPT_RESULT], sessionEnded: null });
    expect(lines.map((l) => [l.item, l.status, l.error.name, JSON.parse(l.error.cause)])).toEqual([
      [{ sku: 'E5' }, 'ABORTED', 'States.Aborted', report('The execution was stopped before it finished.')],
      [{ sku: 'F6' }, 'FAILED', 'States.Timeout', report('The execution reached its timeout.')],
    ]);
  });

  it('a history it may not read leaves such an item as Step Functions left it, and says which item', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'ABORTED', output: JSON.stringify({ ResultWriterDetails: { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' } }) } as never);
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: 'batch-results/run/manifest.json' }).resolves(body({ DestinationBucket: BUCKET, ResultFiles: { FAILED: [{ Key: 'batch-results/run/FAILED_0.json' }] } }));
    s3.on(GetObjectCommand, { Key: 'batch-results/run/FAILED_0.json' }).resolves(body([{ ExecutionArn: 'arn:aws:states:eu-west-1:123456789012:execution:WebrunBatch/Items:i-4', Input: input(4, 'E5'), Status: 'ABORTED' }]));
    sfn.on(GetExecutionHistoryCommand).rejects(Object.assign(new Error('not authorized to perform: states:GetExecutionHistory'), { name: 'AccessDeniedException' }));
    const r = await run(['batch', 'results', BATCH_ARN]);
    expect(JSON.parse(r.stdout)).toEqual({ item: { sku: 'E5' }, status: 'ABORTED', error: { name: 'States.Aborted', cause: 'The execution was stopped before it finished.' } });
    expect(r.stderr).toContain('(the results item 5 completed could not be read from its history');
  });

  it('says a running batch has no results yet (exit 2)', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' } as never);
    const r = await run(['batch', 'results', BATCH_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is still running');
  });
});
