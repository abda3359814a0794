/**
 * `npx webrun-sfn batch start|status|results`: batches of the deployed batch state machine (lib/webrun-batch.ts).
 *
 *   batch start <items> --template <t.json> [--concurrency N] [--tolerate P] [--name N] [--follow]
 *       checks the template with every item (a bad one is named by its line: exit 2, nothing uploaded), uploads the
 *       items as checked (a JSON array, batches/<name>/items-<digest>.json) to the result bucket, starts the batch; prints its ARN
 *   batch status <arn> [--follow]   counts from the batch's Map Run: total, running, succeeded, failed
 *   batch results <arn> [--refs]    one JSON line per item (item, status, output or error), from the ResultWriter's files
 *
 * The batch state machine: --state-machine-arn, else WEBRUN_BATCH_STATE_MACHINE_ARN, else the stack's
 * BatchStateMachineArn output (--stack, else stackName in webrun.config.json or --config). Its result bucket is read
 * from its own definition (the ResultWriter's bucket), so no other setting is needed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  DescribeMapRunCommand,
  DescribeStateMachineCommand,
  ListMapRunsCommand,
  StartExecutionCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { BATCH_ITEMS_PREFIX, BATCH_LIMITS, type BatchChildInput, type BatchInput } from '../lambdas/shared/batch-contract';
import type { WorkflowOutput } from '../lambdas/shared/contract';
import { resolveOutput, s3ResultStore } from '../lambdas/shared/result-store';
import { isPlainObject } from '../lambdas/shared/schema/core';
import type { BatchItemResult } from '../local/batch';
import { checkItems, itemFormat, ItemsError, parseItems, templateProblem, type BatchItem } from '../local/batch-items';
import { causeKeepingResults, isFailureReport } from '../local/progress';
import { CliError, defaultClients, describeAwsError, EXIT, parseStatesArn, regionForArn, type StateMachineKind } from './aws';
import { finalCount, TerminalProgress, type BatchCounts, type ProgressStream } from './batch-progress';
import { lastRunSoFar, startedExecutionOf } from './history';
import { defaultSleep, folderOf, intervalSeconds as checkedInterval, resolveStateMachine, type CommandIo, type TargetOptions } from './commands';
import { readUserFile, userPath } from './local-options';
import { readJsonInput, readText } from './process';

export const BATCH_USAGE = `Batches (the batch state machine: config batch.enabled; docs/BATCHES.md):
  batch start <items> --template <t.json>   check every item, upload the items, start the batch; prints its ARN
      --concurrency N        child executions at once (default: the stack's batch.maxConcurrency)
      --tolerate P           the share of items (0-100 %) that may fail (default: batch.toleratedFailurePercentage)
      --name <name>          the batch's execution name (default batch-<time>-<random>)
      --follow               then show its progress until it ends (exit code as for status --follow)
  batch status <batchArn>  counts: total, running, succeeded, failed
      --follow               until it ends: a live bar on a terminal, else a line when the counts change
  batch results <batchArn> one JSON line per item: item, status, output or error
      --refs                 print stored results as their references (s3://...), unread
  The batch state machine (start): --state-machine-arn <arn>, else WEBRUN_BATCH_STATE_MACHINE_ARN, else the
  BatchStateMachineArn output of the stack (--stack <name>, else stackName in webrun.config.json or --config <path>).`;

/** The output of the stack that names the batch state machine (lib/webrun-stack.ts). */
export const BATCH_STATE_MACHINE_OUTPUT = 'BatchStateMachineArn';

const EXECUTION_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/;
const ENDED = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE']);

export interface BatchIo extends CommandIo {
  /** Where `status --follow` draws its bar. @default stderr when it is this process's terminal */
  progressStream?: ProgressStream;
}

const clientsOf = (io: CommandIo) => io.clients ?? defaultClients;

async function call<T>(fn: () => Promise<T>, ctx: Parameters<typeof describeAwsError>[1]): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw describeAwsError(err, ctx);
  }
}

function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// --- start -------------------------------------------------------------------------------------------------------

export interface BatchStartOptions extends TargetOptions {
  template: string;
  concurrency?: number;
  tolerate?: number;
  name?: string;
  follow: boolean;
  intervalSeconds?: number;
}

/** The batch state machine: the flag, WEBRUN_BATCH_STATE_MACHINE_ARN, else the stack's BatchStateMachineArn output. */
const BATCH_STATE_MACHINE: StateMachineKind = {
  label: 'batch state machine',
  envVar: 'WEBRUN_BATCH_STATE_MACHINE_ARN',
  output: BATCH_STATE_MACHINE_OUTPUT,
  missingOutputHint: 'set "batch": { "enabled": true } in webrun.config.json and deploy, or pass --state-machine-arn <arn>',
};

/** The result bucket and prefix the batch state machine writes to, from its definition (the ResultWriter). */
async function resultWriterOf(client: SFNClient, stateMachineArn: string, region: string): Promise<{ bucket: string; prefix: string }> {
  const described = await call(() => client.send(new DescribeStateMachineCommand({ stateMachineArn })), { arn: stateMachineArn, region });
  const definition = parseJson(described.definition);
  const states = isPlainObject(definition) && isPlainObject(definition.States) ? Object.values(definition.States) : [];
  for (const state of states) {
    const writer = isPlainObject(state) && isPlainObject(state.ResultWriter) && isPlainObject(state.ResultWriter.Parameters) ? state.ResultWriter.Parameters : undefined;
    if (typeof writer?.Bucket === 'string') return { bucket: writer.Bucket, prefix: typeof writer.Prefix === 'string' ? writer.Prefix : '' };
  }
  throw new CliError(`${stateMachineArn} is not a webrun-sfn batch state machine (its definition writes no results to S3)`, false, 'NotABatch');
}

/**
 * The ResultWriter of a batch execution's state machine. An execution of any other state machine (a workflow run)
 * is refused as NotABatch: read as a batch it would look like an empty, successful one.
 */
async function batchWriterOf(client: SFNClient, executionArn: string, stateMachineArn: string | undefined, region: string): Promise<{ bucket: string; prefix: string }> {
  const arn = stateMachineArn || stateMachineOfExecution(executionArn);
  try {
    return await resultWriterOf(client, arn, region);
  } catch (err) {
    if (!(err instanceof CliError) || err.name !== 'NotABatch') throw err;
    throw new CliError(`${executionArn} is not a batch: its state machine ${arn} writes no results to S3 (\`webrun-sfn result\` reads a workflow execution)`, false, 'NotABatch');
  }
}

/** The state machine an execution ARN names (`...:execution:<state machine>:<name>`). */
function stateMachineOfExecution(executionArn: string): string {
  const { partition, region, account, stateMachineName } = parseStatesArn(executionArn, 'execution');
  return `arn:${partition}:states:${region}:${account}:stateMachine:${stateMachineName}`;
}

function batchName(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `batch-${stamp}-${randomBytes(3).toString('hex')}`;
}

export async function batchStartCommand(io: BatchIo, opts: BatchStartOptions, itemsFile: string): Promise<number> {
  // Everything is checked before anything is uploaded.
  let template: unknown;
  try {
    template = await readUserFile(userPath(opts.template, folderOf(io)), (path) => readJsonInput(path, io.readStdin));
  } catch (err) {
    throw new CliError(`--template: ${(err as Error).message}`, false);
  }
  if (!isPlainObject(template)) throw new CliError(`--template: ${opts.template} must hold a workflow input object with "tasks"`, false);
  const templateTooLarge = templateProblem(template);
  if (templateTooLarge) throw new CliError(`--template: ${opts.template}: ${templateTooLarge}\n(nothing was uploaded or started)`, false, 'Webrun.InvalidInput');
  let text: string;
  try {
    text = await readUserFile(userPath(itemsFile, folderOf(io)), (path) => readText(path, io.readStdin));
  } catch (err) {
    throw new CliError((err as Error).message, false);
  }
  const source = itemsFile === '-' ? 'stdin' : itemsFile;
  const format = itemFormat(itemsFile, text);
  let items: BatchItem[];
  try {
    items = parseItems(text, format, source);
    checkItems(template, items, source);
  } catch (err) {
    if (err instanceof ItemsError) throw new CliError(`${err.message}\n(nothing was uploaded or started)`, false, 'Webrun.InvalidInput');
    throw err;
  }
  if (opts.concurrency !== undefined && (!Number.isInteger(opts.concurrency) || opts.concurrency < 1 || opts.concurrency > BATCH_LIMITS.maxConcurrency)) {
    throw new CliError(`--concurrency must be a whole number from 1 to ${BATCH_LIMITS.maxConcurrency}, got ${opts.concurrency}`, true);
  }
  if (opts.tolerate !== undefined && !(opts.tolerate >= 0 && opts.tolerate <= 100)) throw new CliError(`--tolerate must be a percentage from 0 to 100, got ${opts.tolerate}`, true);
  if (opts.name !== undefined && !EXECUTION_NAME.test(opts.name)) {
    throw new CliError(`--name ${JSON.stringify(opts.name)} is not a valid execution name: 1-80 characters without spaces, brackets, wildcards or " # % \\ ^ | ~ \` $ & , ; : /`, true);
  }

  const target = await resolveStateMachine(io, opts, BATCH_STATE_MACHINE);
  const sfn = clientsOf(io).sfn(target.region);
  const { bucket } = await resultWriterOf(sfn, target.arn, target.region);
  const name = opts.name ?? batchName();
  // The items as they were checked, whatever the file's format: a JSON array of their fields, so that the deployed
  // batch reads exactly what was validated (no second CSV parser, byte-order mark or quoting rule to differ).
  // The key names the items' digest too: a name reused with other items uploads beside the first batch's items, never
  // over them, and its start (another input) is refused, as a reused name with another input is.
  const body = JSON.stringify(items.map((item) => item.vars));
  const key = `${BATCH_ITEMS_PREFIX}${name}/items-${createHash('sha256').update(body).digest('hex').slice(0, 16)}.json`;
  await call(() => clientsOf(io).s3(target.region).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' })), { arn: `s3://${bucket}/${key}`, region: target.region });
  const count = items.length;
  const input: BatchInput = {
    items: { bucket, key, format: 'json' },
    template,
    ...(opts.concurrency !== undefined ? { maxConcurrency: opts.concurrency } : {}),
    ...(opts.tolerate !== undefined ? { toleratedFailurePercentage: opts.tolerate } : {}),
  };
  const started = await call(() => sfn.send(new StartExecutionCommand({ stateMachineArn: target.arn, name, input: JSON.stringify(input) })), { arn: target.arn, region: target.region, executionName: name });
  const executionArn = started.executionArn ?? '';
  io.stderr(`webrun-sfn: started a batch of ${count} item(s) (s3://${bucket}/${key})\n  ${executionArn}\n`);
  if (opts.follow) return batchStatusCommand(io, { json: opts.json, follow: true, intervalSeconds: opts.intervalSeconds }, executionArn);
  if (opts.json) io.stdout(`${JSON.stringify({ executionArn, items: { bucket, key, format, total: count } })}\n`);
  else io.stdout(`${executionArn}\n`);
  io.stderr(`  follow it with: npx webrun-sfn batch status --follow ${executionArn}\n`);
  return EXIT.ok;
}

// --- status ------------------------------------------------------------------------------------------------------

export interface BatchStatusOptions {
  json: boolean;
  region?: string;
  follow: boolean;
  intervalSeconds?: number;
}

export interface BatchStatus {
  executionArn: string;
  status: string;
  mapRunArn?: string;
  items: { total: number; running: number; succeeded: number; failed: number; pending: number; aborted: number };
  error?: { name: string; cause: string };
}

/** @param checkBatch whether to make sure first that it is a batch execution (once is enough when following) */
async function statusOf(client: SFNClient, executionArn: string, region: string, checkBatch: boolean): Promise<BatchStatus> {
  const execution = await call(() => client.send(new DescribeExecutionCommand({ executionArn })), { arn: executionArn, region });
  if (checkBatch) await batchWriterOf(client, executionArn, execution.stateMachineArn, region);
  const runs = await call(() => client.send(new ListMapRunsCommand({ executionArn, maxResults: 1 })), { arn: executionArn, region });
  const mapRunArn = runs.mapRuns?.[0]?.mapRunArn;
  const counts = mapRunArn ? (await call(() => client.send(new DescribeMapRunCommand({ mapRunArn })), { arn: mapRunArn, region })).itemCounts : undefined;
  const status: BatchStatus = {
    executionArn,
    status: execution.status ?? 'UNKNOWN',
    ...(mapRunArn ? { mapRunArn } : {}),
    items: {
      total: counts?.total ?? 0,
      running: counts?.running ?? 0,
      succeeded: counts?.succeeded ?? 0,
      failed: (counts?.failed ?? 0) + (counts?.timedOut ?? 0),
      pending: counts?.pending ?? 0,
      aborted: counts?.aborted ?? 0,
    },
  };
  if (execution.error !== undefined || execution.cause !== undefined) status.error = { name: execution.error ?? '', cause: execution.cause ?? '' };
  return status;
}

const countsOf = (s: BatchStatus): BatchCounts => ({ total: s.items.total, succeeded: s.items.succeeded, failed: s.items.failed, running: s.items.running, aborted: s.items.aborted });
const line = (s: BatchStatus) => `${s.status}: ${s.mapRunArn ? `${s.items.succeeded + s.items.failed + s.items.aborted}/${s.items.total} items done, ${s.items.succeeded} succeeded, ${s.items.failed} failed, ${s.items.running} running` : 'no items read yet'}`;

export async function batchStatusCommand(io: BatchIo, opts: BatchStatusOptions, executionArn: string): Promise<number> {
  const region = regionForArn(parseStatesArn(executionArn, 'execution'), opts.region, 'batch execution');
  const client = clientsOf(io).sfn(region);
  if (!opts.follow) {
    const s = await statusOf(client, executionArn, region, true);
    if (opts.json) io.stdout(`${JSON.stringify(s)}\n`);
    else io.stdout(`${line(s)}\n`);
    // A batch that failed says why, as --follow says it at the end.
    if (s.error) io.stderr(`  ${s.error.name}: ${s.error.cause}\n`);
    return ENDED.has(s.status) && s.status !== 'SUCCEEDED' ? EXIT.executionFailed : EXIT.ok;
  }
  const sleep = io.sleep ?? defaultSleep;
  const intervalMs = Math.round((opts.intervalSeconds ?? 5) * 1000);
  const stream = io.progressStream ?? (io.env === process.env && process.stderr.isTTY === true ? process.stderr : undefined);
  let bar: TerminalProgress | undefined;
  let last = '';
  let polls = 0;
  const started = Date.now();
  let s: BatchStatus;
  try {
    for (;;) {
      s = await statusOf(client, executionArn, region, polls++ === 0);
      if (stream?.isTTY && s.mapRunArn) {
        bar ??= new TerminalProgress(stream, s.items.total);
        bar.update(countsOf(s));
      } else if (!stream?.isTTY && line(s) !== last) {
        last = line(s);
        io.stderr(`  ${last}\n`);
      }
      if (ENDED.has(s.status)) break;
      await sleep(intervalMs, io.signal);
      if (io.signal?.aborted) {
        bar?.stop();
        io.stderr(`webrun-sfn: stopped following; the batch goes on (\`aws stepfunctions stop-execution --execution-arn ${executionArn}\` stops it and its items)\n`);
        // --json promises one object on stdout: the last counts seen (and the batch's ARN, printed nowhere else by `batch start --follow`).
        if (opts.json) io.stdout(`${JSON.stringify(s)}\n`);
        return EXIT.interrupted;
      }
    }
  } finally {
    bar?.stop();
  }
  const mark = s.status === 'SUCCEEDED' ? '✔' : '✘';
  io.stderr(`${mark} batch ${s.status.toLowerCase()}: ${finalCount(countsOf({ ...s, items: { ...s.items, running: 0 } }), Date.now() - started)}\n`);
  if (s.error) io.stderr(`  ${s.error.name}: ${s.error.cause}\n`);
  if (opts.json) io.stdout(`${JSON.stringify(s)}\n`);
  return s.status === 'SUCCEEDED' ? EXIT.ok : EXIT.executionFailed;
}

// --- results -----------------------------------------------------------------------------------------------------

export interface BatchResultsOptions {
  region?: string;
  refs: boolean;
  json?: boolean;
}

interface Manifest {
  DestinationBucket?: string;
  ResultFiles?: Record<string, Array<{ Key?: string }>>;
}

/** One entry of a ResultWriter file: a map-run child execution (its input, output or error). */
interface ResultEntry {
  /** The map iteration's own execution. */
  ExecutionArn?: string;
  Input?: unknown;
  Output?: unknown;
  Status?: string;
  Error?: string;
  Cause?: string;
}

async function getJson(s3: S3Client, bucket: string, key: string, region: string): Promise<unknown> {
  const object = await call(() => s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })), { arn: `s3://${bucket}/${key}`, region });
  const text = (await object.Body?.transformToString('utf8')) ?? '';
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`s3://${bucket}/${key} is not JSON: is it a ResultWriter file of a webrun-sfn batch?`, false, 'UnexpectedResponse');
  }
}

/** Where the ResultWriter's manifest is: the batch's output says, else its Map Run (a failed batch has no output). */
async function manifestOf(client: SFNClient, executionArn: string, region: string): Promise<{ bucket: string; key: string; status: string; error?: string }> {
  const execution = await call(() => client.send(new DescribeExecutionCommand({ executionArn })), { arn: executionArn, region });
  const status = execution.status ?? 'UNKNOWN';
  const error = execution.error || undefined;
  const { bucket, prefix } = await batchWriterOf(client, executionArn, execution.stateMachineArn, region);
  const output = parseJson(execution.output);
  const details = isPlainObject(output) && isPlainObject(output.ResultWriterDetails) ? output.ResultWriterDetails : undefined;
  if (typeof details?.Bucket === 'string' && typeof details.Key === 'string') return { bucket: details.Bucket, key: details.Key, status, error };
  if (status === 'RUNNING') throw new CliError(`the batch ${executionArn} is still running: its results are written when it ends (\`webrun-sfn batch status --follow\` waits)`, false, 'StillRunning');
  const runs = await call(() => client.send(new ListMapRunsCommand({ executionArn, maxResults: 1 })), { arn: executionArn, region });
  const mapRunArn = runs.mapRuns?.[0]?.mapRunArn;
  if (!mapRunArn) throw new CliError(`the batch ${executionArn} ran no items (${status}${execution.error ? `: ${execution.error}` : ''}), so it has no results`, false, 'NoResults');
  const id = mapRunArn.slice(mapRunArn.lastIndexOf(':') + 1);
  return { bucket, key: `${prefix ? `${prefix}/` : ''}${id}/manifest.json`, status, error };
}

/**
 * An item's outcome from its ResultWriter entry, with the executions that can tell more about a failure: the map
 * iteration (`iterationArn`) and the workflow execution it started (`workflowArn`, when the entry names it).
 */
export function resultOf(entry: ResultEntry, fileStatus: string): { index: number; result: BatchItemResult; iterationArn?: string; workflowArn?: string } {
  const input = parseJson(entry.Input) as Partial<BatchChildInput> | undefined;
  const index = typeof input?.index === 'number' ? input.index : Number.MAX_SAFE_INTEGER;
  const item = isPlainObject(input?.item) ? input.item : isPlainObject(input?.run?.vars) ? input.run.vars : {};
  const status = (entry.Status ?? fileStatus) as string;
  if (status === 'SUCCEEDED') {
    const out = parseJson(entry.Output) as { output?: unknown } | undefined;
    const output = isPlainObject(out) ? parseJson(out.output) : undefined;
    return { index, result: { item, status: 'SUCCEEDED', ...(output !== undefined ? { output: output as WorkflowOutput } : {}) } };
  }
  if (fileStatus === 'PENDING' || status === 'PENDING') return { index, result: { item, status: 'PENDING' } };
  // A failed child workflow fails its "Run item" with States.TaskFailed, its cause the child's description. A child
  // stopped or timed out carries no error of its own: it gets Step Functions' names, as `webrun-sfn result` gives.
  const child = parseJson(entry.Cause);
  const childStatus = isPlainObject(child) ? child.Status : undefined;
  const childCause = isPlainObject(child) && typeof child.Cause === 'string' ? child.Cause : '';
  const error = isPlainObject(child) && typeof child.Error === 'string'
    ? { name: child.Error, cause: childCause }
    : childStatus === 'TIMED_OUT'
      ? { name: 'States.Timeout', cause: childCause || 'The execution reached its timeout.' }
      : childStatus === 'ABORTED' || (status === 'ABORTED' && !entry.Error)
        ? { name: 'States.Aborted', cause: childCause || 'The execution was stopped before it finished.' }
        : { name: entry.Error ?? status, cause: entry.Cause ?? '' };
  const iterationArn = typeof entry.ExecutionArn === 'string' ? entry.ExecutionArn : undefined;
  const workflowArn = isPlainObject(child) && typeof child.ExecutionArn === 'string' ? child.ExecutionArn : undefined;
  return { index, result: { item, status: status === 'ABORTED' ? 'ABORTED' : 'FAILED', error }, iterationArn, workflowArn };
}

/**
 * A failed item whose workflow ended without its failure step (stopped, timed out, past a quota) gets that step's
 * report, from the newest state data of the workflow execution's history (found through the map iteration when the
 * entry does not name it), as `webrun-sfn result` gives it. The history unread leaves the error as it was.
 */
async function keepCompletedResults(client: SFNClient, row: ReturnType<typeof resultOf>, note: (line: string) => void): Promise<void> {
  const error = row.result.error;
  if (!error || isFailureReport(error.cause)) return;
  try {
    const workflowArn = row.workflowArn ?? (row.iterationArn ? await startedExecutionOf(client, row.iterationArn) : undefined);
    const kept = workflowArn ? await lastRunSoFar(client, workflowArn) : undefined;
    if (kept) row.result.error = { ...error, cause: causeKeepingResults(error.cause, kept, { sessionEnded: null }) };
  } catch (err) {
    note(`  (the results item ${row.index + 1} completed could not be read from its history: ${describeAwsError(err).message})`);
  }
}

export async function batchResultsCommand(io: BatchIo, opts: BatchResultsOptions, executionArn: string): Promise<number> {
  const region = regionForArn(parseStatesArn(executionArn, 'execution'), opts.region, 'batch execution');
  const client = clientsOf(io).sfn(region);
  const s3 = clientsOf(io).s3(region);
  const where = await manifestOf(client, executionArn, region);
  let manifest: Manifest;
  try {
    manifest = (await getJson(s3, where.bucket, where.key, region)) as Manifest;
  } catch (err) {
    // No manifest: the batch ended before its results were written, or they expired (--refs cannot help here).
    if ((err as Error).name === 'NoSuchKey') {
      throw new CliError(`the batch ${executionArn} (${where.status}${where.error ? `: ${where.error}` : ''}) has no results manifest at s3://${where.bucket}/${where.key}: it ended before writing its results, or they expired after resultRetentionDays (default 30)`, false, 'NoResults');
    }
    throw err;
  }
  const bucket = manifest.DestinationBucket ?? where.bucket;
  const rows: Array<ReturnType<typeof resultOf>> = [];
  for (const [fileStatus, files] of Object.entries(manifest.ResultFiles ?? {})) {
    for (const file of files ?? []) {
      if (!file.Key) continue;
      let entries: unknown;
      try {
        entries = await getJson(s3, bucket, file.Key, region);
      } catch (err) {
        // A result file of the batch's own, not a stored task result: --refs cannot help, so it is not suggested.
        if ((err as Error).name !== 'NoSuchKey') throw err;
        throw new CliError(`the batch ${executionArn} (${where.status}) lists the result file s3://${bucket}/${file.Key} in its manifest, but it is gone: its results expired after resultRetentionDays (default 30), or were deleted`, false, 'NoResults');
      }
      for (const entry of Array.isArray(entries) ? entries : []) rows.push(resultOf(entry as ResultEntry, fileStatus));
    }
  }
  rows.sort((a, b) => a.index - b.index);
  for (const row of rows) await keepCompletedResults(client, row, (line) => io.stderr(`${line}\n`));
  const store = s3ResultStore(s3, undefined);
  const counts = { succeeded: 0, failed: 0 };
  const results: unknown[] = [];
  for (const { index, result } of rows) {
    if (result.status === 'SUCCEEDED') counts.succeeded++;
    if (result.status === 'FAILED') counts.failed++;
    if (!opts.refs && result.output && Array.isArray(result.output.tasks) && result.output.tasks.some((t) => t.resultRef)) {
      // One stored result that cannot be read (expired, access denied) leaves that item's references as they are,
      // said on stderr; the other items are still printed.
      try {
        result.output = await call(() => resolveOutput(result.output as WorkflowOutput, store), { region, service: 'S3' });
      } catch (err) {
        io.stderr(`webrun-sfn: item ${index + 1}: its stored results were not read back, its references are printed (${(err as Error).message})\n`);
      }
    }
    if (opts.json) results.push(result);
    else io.stdout(`${JSON.stringify(result)}\n`);
  }
  // --json: one object, as every command's; without it, one JSON line per item.
  if (opts.json) io.stdout(`${JSON.stringify({ executionArn, status: where.status, items: { total: rows.length, ...counts }, results })}\n`);
  io.stderr(`webrun-sfn: ${rows.length} item(s) of ${executionArn} (${where.status}): ${counts.succeeded} succeeded, ${counts.failed} failed (s3://${bucket}/${where.key})\n`);
  return where.status === 'SUCCEEDED' ? EXIT.ok : EXIT.executionFailed;
}

// --- arguments ---------------------------------------------------------------------------------------------------

const SUBCOMMANDS: Record<string, { flags: string[]; positional: string }> = {
  start: { flags: ['json', 'region', 'help', 'template', 'concurrency', 'tolerate', 'name', 'follow', 'interval', 'state-machine-arn', 'stack', 'config'], positional: '<items>' },
  status: { flags: ['json', 'region', 'help', 'follow', 'interval'], positional: '<batchArn>' },
  results: { flags: ['json', 'region', 'help', 'refs'], positional: '<batchArn>' },
};

function number(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw.replace(/%$/, ''));
  if (raw.trim() === '' || !Number.isFinite(value)) throw new CliError(`--${flag} must be a number, got ${JSON.stringify(raw)}`, true);
  return value;
}

/** `webrun-sfn batch <start|status|results> ...`: parses its arguments and runs it; returns the exit code. */
export async function batchMain(io: BatchIo, argv: string[], usage: string): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stderr(`${usage}\n`);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  const spec = SUBCOMMANDS[sub];
  if (!spec) throw new CliError(`unknown batch command ${JSON.stringify(sub)} (start, status or results)`, true);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        template: { type: 'string' },
        concurrency: { type: 'string' },
        tolerate: { type: 'string' },
        name: { type: 'string' },
        follow: { type: 'boolean', default: false },
        interval: { type: 'string' },
        refs: { type: 'boolean', default: false },
        'state-machine-arn': { type: 'string' },
        stack: { type: 'string' },
        config: { type: 'string' },
      },
    });
  } catch (err) {
    throw new CliError((err as Error).message, true);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stderr(`${usage}\n`);
    return EXIT.ok;
  }
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === false || spec.flags.includes(key)) continue;
    throw new CliError(`--${key} does not apply to \`batch ${sub}\``, true);
  }
  if (positionals.length !== 1) throw new CliError(positionals.length === 0 ? `\`batch ${sub}\` needs ${spec.positional}` : `\`batch ${sub}\` takes one ${spec.positional}, got ${positionals.join(' ')}`, true);
  const intervalSeconds = checkedInterval(values.interval);
  switch (sub) {
    case 'start':
      if (!values.template) throw new CliError('`batch start` needs --template <t.json>, the workflow input every item runs with', true);
      return batchStartCommand(io, {
        json: values.json ?? false,
        region: values.region,
        template: values.template,
        concurrency: number('concurrency', values.concurrency),
        tolerate: number('tolerate', values.tolerate),
        name: values.name,
        follow: values.follow ?? false,
        intervalSeconds,
        stateMachineArn: values['state-machine-arn'],
        stack: values.stack,
        config: values.config,
      }, positionals[0]);
    case 'status':
      return batchStatusCommand(io, { json: values.json ?? false, region: values.region, follow: values.follow ?? false, intervalSeconds }, positionals[0]);
    default:
      return batchResultsCommand(io, { json: values.json ?? false, region: values.region, refs: values.refs ?? false }, positionals[0]);
  }
}
