/**
 * The commands for deployed workflows, on @aws-sdk/client-sfn: start, follow, result, stop, list. Each returns
 * its exit code (0 ok, 1 the execution failed / aborted / timed out, 2 the command could not do its job); progress
 * and messages go to stderr, results to stdout (one JSON object with `--json`).
 */
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  type DescribeExecutionCommandOutput,
  type ExecutionListItem,
  type ExecutionStatus,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { WorkflowOutput } from '../lambdas/shared/contract';
import { isWebrunError } from '../lambdas/shared/errors';
import { resolveOutput, s3ResultStore } from '../lambdas/shared/result-store';
import { validateWorkflowInput } from '../lambdas/shared/input';
import { ConfigFileError, DEFAULT_STACK_NAME, loadConfig } from '../lib/config';
import { causeKeepingResults, isFailureReport, keptResultsText, parseFailureCause, ProgressTracker, readableCause, type RunSoFar } from '../local/progress';
import {
  CliError,
  configuredRegion,
  defaultClients,
  describeAwsError,
  executionConsoleUrl,
  EXIT,
  parseStatesArn,
  regionForArn,
  stateMachineFromStack,
  WORKFLOW_STATE_MACHINE,
  type AwsClients,
} from './aws';
import { HistoryTranslator, lastRunSoFar, newHistoryEvents, TERMINAL_EVENTS } from './history';
import { readUserFile, userFolder, userPath } from './local-options';
import { readJsonInput } from './process';

export interface CommandIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
  /** Aborted on Ctrl-C: `follow` stops following (the execution goes on). */
  signal?: AbortSignal;
  clients?: AwsClients;
  /** Waits between history polls; resolves early when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The folder relative paths (the input, --template, the items, --config) are relative to. @default folderOf */
  cwd?: string;
}

/**
 * The folder the user's relative paths are relative to: the one the command was typed in, as for `local`
 * (`npm run cli` runs in the package folder and names the user's in INIT_CWD; cli/local-options.ts `userFolder`).
 */
export function folderOf(io: CommandIo): string {
  return io.cwd ?? userFolder(io.env);
}

export interface CommonOptions {
  json: boolean;
  region?: string;
  /** Print stored results as their `resultRef`s instead of reading them from the result bucket. */
  refs?: boolean;
}

/** What `result`, `follow` and `start --follow` report about an execution. */
export interface ExecutionSummary {
  executionArn: string;
  name?: string;
  status: ExecutionStatus | string;
  startDate?: string;
  /** Null while the execution runs (the key is always there, as the documented shape has it). */
  stopDate: string | null;
  /** The workflow output (`{ sessionId, tasks }`) when it succeeded and its data is readable. */
  output?: unknown;
  /** False when the execution's output is not included (restricted execution data). */
  outputIncluded?: boolean;
  error?: { name: string; cause: string };
  sessionId?: string;
}

// PENDING_REDRIVE: a redrive was asked for and the execution is about to run again, as RUNNING is (exit 0).
const FAILED_STATUSES = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);
// Not PENDING_REDRIVE: ListExecutions refuses that filter with a stateMachineArn (it needs a Map Run's ARN).
export const LIST_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'] as const;
/** Step Functions execution names: 1-80 characters, none of whitespace, brackets, wildcards or the listed specials. */
const EXECUTION_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/;

/**
 * The longest --interval, in seconds. A poll an hour apart is already rare; far longer ones (past 2^31-1 ms, about
 * 24.8 days) would overflow setTimeout, which then fires at once: a poll every millisecond.
 */
export const MAX_INTERVAL_SECONDS = 3600;

/** `--interval`'s seconds, checked: from 0.1 to MAX_INTERVAL_SECONDS. */
export function intervalSeconds(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0.1 || value > MAX_INTERVAL_SECONDS) {
    throw new CliError(`--interval must be a number of seconds from 0.1 to ${MAX_INTERVAL_SECONDS}, got ${JSON.stringify(raw)}`, true);
  }
  return value;
}

export const clientsOf = (io: CommandIo) => io.clients ?? defaultClients;

export function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function call<T>(fn: () => Promise<T>, ctx: Parameters<typeof describeAwsError>[1]): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw describeAwsError(err, ctx);
  }
}

/** The execution's page in the Step Functions console, as a line for stderr (none where no console is known). */
function consoleLine(executionArn: string): string {
  const url = executionConsoleUrl(executionArn);
  return url ? `  console: ${url}\n` : '';
}

function iso(d: Date | undefined): string | undefined {
  return d ? new Date(d).toISOString() : undefined;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function summaryOf(d: DescribeExecutionCommandOutput, executionArn: string): ExecutionSummary {
  const summary: ExecutionSummary = { executionArn: d.executionArn ?? executionArn, name: d.name, status: d.status ?? 'UNKNOWN', startDate: iso(d.startDate), stopDate: iso(d.stopDate) ?? null };
  if (d.status === 'SUCCEEDED') {
    summary.outputIncluded = d.outputDetails?.included !== false && d.output !== undefined;
    if (d.output !== undefined) summary.output = parseJson(d.output);
  }
  // A stopped or timed-out execution has Step Functions' name whatever StopExecution was given (often a cause alone).
  if (d.status === 'TIMED_OUT') summary.error = { name: d.error || 'States.Timeout', cause: d.cause || 'The execution reached its timeout.' };
  else if (d.status === 'ABORTED') summary.error = { name: d.error || 'States.Aborted', cause: d.cause || 'The execution was stopped before it finished.' };
  else if (d.error !== undefined || d.cause !== undefined) summary.error = { name: d.error ?? '', cause: d.cause ?? '' };
  const fromOutput = (summary.output as { sessionId?: unknown } | undefined)?.sessionId;
  const fromCause = parseFailureCause(d.cause)?.sessionId;
  const sessionId = typeof fromOutput === 'string' ? fromOutput : typeof fromCause === 'string' ? fromCause : undefined;
  if (sessionId) summary.sessionId = sessionId;
  return summary;
}

export function exitCodeOf(summary: ExecutionSummary): number {
  return FAILED_STATUSES.has(summary.status) ? EXIT.executionFailed : EXIT.ok;
}

/** Prints an execution's outcome: the output (or the summary with --json) on stdout, the story on stderr. */
function printOutcome(summary: ExecutionSummary, io: CommandIo, opts: CommonOptions): number {
  if (opts.json) io.stdout(`${JSON.stringify(summary)}\n`);
  switch (summary.status) {
    case 'SUCCEEDED': {
      const tasks = (summary.output as { tasks?: unknown[] } | undefined)?.tasks;
      io.stderr(`✔ succeeded${Array.isArray(tasks) ? `: ${tasks.length} task(s) completed` : ''}${summary.stopDate ? ` at ${summary.stopDate}` : ''}\n`);
      if (!summary.outputIncluded) io.stderr('  (the output is not readable here: the execution data is restricted)\n');
      else if (!opts.json) io.stdout(`${JSON.stringify(summary.output, null, 2)}\n`);
      break;
    }
    case 'RUNNING':
    case 'PENDING_REDRIVE':
      io.stderr(`… ${summary.status.toLowerCase().replace('_', ' ')} since ${summary.startDate ?? '?'}: \`webrun-sfn follow ${summary.executionArn}\` waits for it\n`);
      break;
    default: {
      const what = summary.status === 'TIMED_OUT' ? 'timed out' : summary.status === 'ABORTED' ? 'aborted' : 'failed';
      io.stderr(`✘ ${what}: ${summary.error?.name || summary.status}\n  ${readableCause(summary.error?.cause ?? '')}\n`);
      // The results it kept are the user's data: on stdout, as the local command prints them.
      const kept = opts.json ? undefined : keptResultsText(summary.error?.cause, summary.sessionId);
      if (kept) io.stdout(kept);
    }
  }
  return exitCodeOf(summary);
}

/**
 * Describes an execution. A failure that skipped the workflow's failure step (a stop, the execution timeout, a broken
 * quota) gets the report that step writes, its results read from the last state data of the history (`soFar`,
 * when the caller has followed that history already).
 */
async function describe(io: CommandIo, opts: CommonOptions, client: SFNClient, executionArn: string, region: string, soFar?: () => Promise<RunSoFar | undefined>): Promise<ExecutionSummary> {
  const d = await call(() => client.send(new DescribeExecutionCommand({ executionArn })), { arn: executionArn, region });
  const summary = summaryOf(d, executionArn);
  if (summary.error && !isFailureReport(summary.error.cause)) {
    let kept: RunSoFar | undefined;
    try {
      kept = await (soFar ?? (() => lastRunSoFar(client, executionArn)))();
    } catch (err) {
      io.stderr(`  (the results it completed could not be read from its history: ${describeAwsError(err, { arn: executionArn, region }).message})\n`);
    }
    // Whether the session cleanup has ended its session yet is not known here: sessionEnded null.
    if (kept) {
      summary.error = { ...summary.error, cause: causeKeepingResults(summary.error.cause, kept, { sessionEnded: null }) };
      if (!summary.sessionId && kept.sessionId) summary.sessionId = kept.sessionId;
    }
  }
  if (opts.refs) return summary;
  // Results too large for the state are in the stack's result bucket: read them back with the caller's credentials,
  // in the output and in a failure's report alike.
  const resolve = (results: WorkflowOutput) => {
    const store = s3ResultStore(clientsOf(io).s3(region), undefined);
    return call(() => resolveOutput(results, store), { arn: results.tasks.find((t) => t.resultRef)?.resultRef?.uri, region, service: 'S3' });
  };
  const output = summary.output as WorkflowOutput | undefined;
  if (Array.isArray(output?.tasks) && output.tasks.some((t) => t.resultRef)) summary.output = await resolve(output);
  const report = parseFailureCause(summary.error?.cause);
  if (summary.error && report && Array.isArray(report.completed) && report.completed.some((t) => t.resultRef)) {
    const { tasks } = await resolve({ sessionId: report.sessionId ?? '', tasks: report.completed });
    summary.error = { ...summary.error, cause: JSON.stringify({ ...report, completed: tasks }) };
  }
  return summary;
}

/** `result <executionArn>`: the execution's status and output (or error). */
export async function resultCommand(io: CommandIo, opts: CommonOptions, executionArn: string): Promise<number> {
  const region = regionForArn(parseStatesArn(executionArn, 'execution'), opts.region, 'execution');
  const summary = await describe(io, opts, clientsOf(io).sfn(region), executionArn, region);
  return printOutcome(summary, io, opts);
}

export interface FollowOptions extends CommonOptions {
  /** Seconds between history polls. @default 2 */
  intervalSeconds?: number;
}

/**
 * `follow <executionArn>`: the local runner's progress lines, built from the execution history, until the
 * execution ends; then its outcome as `result` prints it.
 */
export async function followCommand(io: CommandIo, opts: FollowOptions, executionArn: string, startDate?: string): Promise<number> {
  const parsedArn = parseStatesArn(executionArn, 'execution');
  const region = regionForArn(parsedArn, opts.region, 'execution');
  const client = clientsOf(io).sfn(region);
  const sleep = io.sleep ?? defaultSleep;
  const intervalMs = Math.round((opts.intervalSeconds ?? 2) * 1000);
  const write = (line: string) => io.stderr(`${line}\n`);
  const tracker = new ProgressTracker(write);
  const translator = new HistoryTranslator();
  let lastId = 0;
  let toldRestricted = false;
  const interrupted = (): number => {
    io.stderr(`webrun-sfn: stopped following; the execution goes on (\`webrun-sfn stop ${executionArn}\` stops it)\n`);
    // --json promises one object on stdout: what is known of the execution, which goes on (the ARN above all,
    // for `start --follow`, whose ARN was printed nowhere else).
    if (opts.json) {
      const known: ExecutionSummary = { executionArn, name: parsedArn.executionName, status: 'RUNNING', startDate, stopDate: null };
      if (tracker.sessionId) known.sessionId = tracker.sessionId;
      io.stdout(`${JSON.stringify(known)}\n`);
    }
    return EXIT.interrupted;
  };
  write(`webrun-sfn: following ${executionArn}`);
  const link = consoleLine(executionArn);
  if (link) io.stderr(link);
  for (;;) {
    const events = await call(() => newHistoryEvents(client, executionArn, lastId, lastId === 0 ? 1000 : 200), { arn: executionArn, region });
    let ended = false;
    for (const e of events) {
      lastId = Math.max(lastId, e.id ?? lastId);
      if (TERMINAL_EVENTS.has(e.type ?? '')) ended = true;
      // A redrive (same ARN) runs the execution again after its end: the history goes on, and so does following.
      if (e.type === 'ExecutionRedriven') ended = false;
      for (const t of translator.translate(e)) {
        if (!t.dataMissing) {
          tracker.handle(t.event);
          continue;
        }
        // Restricted execution data: no input/output to tell the story with, so name the steps.
        if (!toldRestricted) {
          write('  (the history holds no execution data: showing the steps only)');
          toldRestricted = true;
        }
        if (t.event.type === 'entered' && t.stateType === 'Task') write(`  → ${t.event.state}`);
      }
    }
    if (ended) break;
    if (io.signal?.aborted) return interrupted();
    await sleep(intervalMs, io.signal);
    if (io.signal?.aborted) return interrupted();
  }
  const summary = await describe(io, opts, client, executionArn, region, async () => tracker.soFar);
  if (!summary.sessionId && tracker.sessionId) summary.sessionId = tracker.sessionId;
  return printOutcome(summary, io, opts);
}

export interface TargetOptions extends CommonOptions {
  stateMachineArn?: string;
  stack?: string;
  config?: string;
}

/**
 * The state machine of `kind`: --state-machine-arn, else its environment variable (WEBRUN_STATE_MACHINE_ARN for the
 * workflow), else its output of the stack (--stack, else the config's stackName, else the default).
 */
export async function resolveStateMachine(io: CommandIo, opts: TargetOptions, kind = WORKFLOW_STATE_MACHINE): Promise<{ arn: string; region: string }> {
  const explicit = opts.stateMachineArn ?? (io.env[kind.envVar] || undefined);
  if (explicit) {
    const label = `${kind.label} (${opts.stateMachineArn ? '--state-machine-arn' : kind.envVar})`;
    return { arn: explicit, region: regionForArn(parseStatesArn(explicit, 'stateMachine'), opts.region, label) };
  }
  let stackName = opts.stack;
  if (!stackName) {
    try {
      // The default webrun.config.json is the deployment's, in the package folder; a --config path is the user's.
      stackName = loadConfig({ path: opts.config, defaultDir: io.cwd ?? process.cwd(), cwd: folderOf(io) }).stackName;
    } catch (err) {
      if (err instanceof ConfigFileError) throw new CliError(`${err.message} (it names the stack; or pass --stack / --state-machine-arn)`, false, 'ConfigError');
      throw err;
    }
  }
  const region = configuredRegion(opts.region, io.env);
  const arn = await stateMachineFromStack(clientsOf(io).cloudFormation(region), stackName ?? DEFAULT_STACK_NAME, region, kind);
  return { arn, region: parseStatesArn(arn, 'stateMachine').region };
}

async function readInputFile(file: string, io: CommandIo): Promise<unknown> {
  try {
    // A file not found is named as written, with the folder it was looked for in.
    return await readUserFile(userPath(file, folderOf(io)), (path) => readJsonInput(path, io.readStdin));
  } catch (err) {
    throw new CliError((err as Error).message, false);
  }
}

export interface StartOptions extends TargetOptions, FollowOptions {
  follow: boolean;
  /** Execution name: starting twice with the same name and input while it runs returns the same execution. */
  name?: string;
}

/** `start <input.json> [--follow]`: validates the input like the state machine does, then starts an execution. */
export async function startCommand(io: CommandIo, opts: StartOptions, inputFile: string): Promise<number> {
  const input = await readInputFile(inputFile, io);
  try {
    validateWorkflowInput(input);
  } catch (err) {
    if (isWebrunError(err)) throw new CliError(`${inputFile === '-' ? 'stdin' : inputFile}: ${err.message}`, false, err.name);
    throw err;
  }
  if (opts.name !== undefined && !EXECUTION_NAME.test(opts.name)) {
    throw new CliError(`--name ${JSON.stringify(opts.name)} is not a valid execution name: 1-80 characters without spaces, brackets, wildcards or " # % \\ ^ | ~ \` $ & , ; : /`, true);
  }
  const target = await resolveStateMachine(io, opts);
  const client = clientsOf(io).sfn(target.region);
  const started = await call(
    () => client.send(new StartExecutionCommand({ stateMachineArn: target.arn, input: JSON.stringify(input), name: opts.name })),
    { arn: target.arn, region: target.region, executionName: opts.name },
  );
  const executionArn = started.executionArn ?? '';
  if (!opts.follow) {
    if (opts.json) io.stdout(`${JSON.stringify({ executionArn, startDate: iso(started.startDate) })}\n`);
    else io.stdout(`${executionArn}\n`);
    io.stderr(`webrun-sfn: started ${executionArn}\n${consoleLine(executionArn)}  follow it with: npx webrun-sfn follow ${executionArn}\n`);
    return EXIT.ok;
  }
  io.stderr(`webrun-sfn: started ${executionArn}\n`);
  return followCommand(io, { ...opts, region: undefined }, executionArn, iso(started.startDate));
}

export interface StopOptions extends CommonOptions {
  cause?: string;
}

/** `stop <executionArn>`: StopExecution; the session cleanup then terminates its webrun session. */
export async function stopCommand(io: CommandIo, opts: StopOptions, executionArn: string): Promise<number> {
  const region = regionForArn(parseStatesArn(executionArn, 'execution'), opts.region, 'execution');
  const cause = opts.cause ?? 'Stopped with `webrun-sfn stop`.';
  if (cause.length > 32_768) throw new CliError('--cause must be at most 32768 characters', true);
  const stopped = await call(() => clientsOf(io).sfn(region).send(new StopExecutionCommand({ executionArn, cause })), { arn: executionArn, region });
  const stopDate = iso(stopped.stopDate);
  if (opts.json) io.stdout(`${JSON.stringify({ executionArn, status: 'ABORTED', stopDate })}\n`);
  io.stderr(`webrun-sfn: stopped ${executionArn}${stopDate ? ` at ${stopDate}` : ''}; the session cleanup terminates its webrun session\n  the results it completed: npx webrun-sfn result ${executionArn}\n`);
  return EXIT.ok;
}

export interface ListOptions extends TargetOptions {
  status?: string;
  max?: number;
}

/** `list [--status S] [--max N]`: the latest executions, newest first. */
export async function listCommand(io: CommandIo, opts: ListOptions): Promise<number> {
  let statusFilter: ExecutionStatus | undefined;
  if (opts.status !== undefined) {
    const upper = opts.status.toUpperCase().replace(/-/g, '_');
    if (!(LIST_STATUSES as readonly string[]).includes(upper)) throw new CliError(`--status must be one of ${LIST_STATUSES.join(', ')}, got ${JSON.stringify(opts.status)}`, true);
    statusFilter = upper as ExecutionStatus;
  }
  const max = opts.max ?? 20;
  if (!Number.isInteger(max) || max < 1 || max > 1000) throw new CliError(`--max must be a whole number from 1 to 1000, got ${opts.max}`, true);
  const target = await resolveStateMachine(io, opts);
  const client = clientsOf(io).sfn(target.region);
  const items: ExecutionListItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await call(
      () => client.send(new ListExecutionsCommand({ stateMachineArn: target.arn, statusFilter, maxResults: Math.min(100, max - items.length), nextToken })),
      { arn: target.arn, region: target.region },
    );
    items.push(...(page.executions ?? []));
    nextToken = page.nextToken;
  } while (nextToken && items.length < max);
  const rows = items.slice(0, max).map((e) => ({ executionArn: e.executionArn, name: e.name, status: e.status, startDate: iso(e.startDate), stopDate: iso(e.stopDate) ?? null }));
  if (opts.json) {
    io.stdout(`${JSON.stringify({ stateMachineArn: target.arn, executions: rows })}\n`);
    return EXIT.ok;
  }
  if (rows.length === 0) {
    io.stderr(`webrun-sfn: no ${statusFilter ? `${statusFilter} ` : ''}executions of ${target.arn}\n`);
    return EXIT.ok;
  }
  for (const r of rows) io.stdout(`${(r.status ?? '').padEnd(15)} ${r.startDate ?? ''}  ${(r.stopDate ?? '-').padEnd(24)}  ${r.executionArn}\n`);
  return EXIT.ok;
}
