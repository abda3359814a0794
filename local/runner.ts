/**
 * Runs the synthesized workflow in-process with aws-local-stepfunctions. Each Task state calls the real Lambda
 * handler; only the stand-ins differ: the API key is an argument (Secrets Manager in AWS), stored results go to a
 * folder (S3), session records live in memory (DynamoDB). Lambda's error serialization is mimicked so the Catch
 * branches see what they see in AWS, and Step Functions' quotas are enforced (local/quotas.ts).
 *
 * Whatever ends the run (success, failure, a stop, a broken quota), every session the run opened is ended before
 * it returns, as the deployed session cleanup does: steps still running are awaited (a while) or cancelled, and any
 * recorded session that no terminate ended is terminated here.
 */
import './polyfill';
import { randomUUID } from 'node:crypto';
import { CompletionModes, IDEMPOTENT_RETRY_ERRORS, personStopped, QUOTAS, WebrunErrors, type CompletionMode, type WorkflowOutput } from '../lambdas/shared/contract';
import { endRecordedSession } from '../lambdas/shared/cleanup';
import { makeHandlers, type HandlerDeps, type HandlerName, type InvocationContext, type Log } from '../lambdas/shared/handlers';
import type { PersonsAnswer } from '../lambdas/shared/state';
import { validateWorkflowInput } from '../lambdas/shared/input';
import { tooDeep } from '../lambdas/shared/schema/core';
import { MAX_INPUT_DEPTH } from '../lambdas/shared/schema/workflow-input';
import { bytesOf, resolveOutput } from '../lambdas/shared/result-store';
import { memorySessionRecords } from '../lambdas/shared/session-records';
import { sleep as pause } from '../lambdas/shared/settings';
import type { SiteCredentialResolver } from '../lambdas/shared/site-credentials';
import { WebrunClient } from '../lambdas/shared/webrun-client';
import { builtWorkflow, type LocalWorkflow } from './workflow';
import { causeKeepingResults, parseFailureCause, ProgressTracker, type StateEvent } from './progress';
import { QuotaGuard, type QuotaViolation } from './quotas';
import { defaultResultsDir, folderResultStore } from './result-store';
import { localTaskTokens, startReceiver, type LocalReceiver } from './doorbell';
import { memoryWaitingTasks } from '../lambdas/shared/waiting-tasks';

export interface LocalRunOptions {
  input: unknown;
  baseUrl: string;
  /** The local stand-in for the Secrets Manager secret. */
  apiKey: string;
  /** The local stand-in for the site-credential secrets a task names. @default none: such a task fails */
  siteCredentials?: SiteCredentialResolver;
  /** Multiplies every Wait state, Retry interval and in-Lambda pause; 0 = do not wait. @default 1 */
  waitScale?: number;
  /** Progress lines for a person (stderr in the CLI). */
  onProgress?: (line: string) => void;
  /** Aborting stops the execution like StopExecution; the session is then terminated by the runner. */
  signal?: AbortSignal;
  /** Without `workflow`: the default workflow of this completion mode, as built. @default 'poll' */
  completion?: CompletionMode;
  /** The workflow to run: another synthesized one (local/asl.ts, for other construct props), or one built once and reused (tests run many executions). */
  workflow?: LocalWorkflow;
  /** Where the handlers' structured log lines go (the Lambda logger's stand-in). @default discarded */
  log?: Log;
  /** Every state event of the execution, as the progress display sees it (the stand-in for execution history). */
  onStateEvent?: (event: StateEvent) => void;
  /** The folder standing in for the result bucket. @default <OS temp dir>/webrun-sfn-results-<uid> */
  resultsDir?: string;
  /**
   * A person asked a guardrail question (`guardrails.ask`): the terminal prompt, or a test. Resolve with the answer,
   * with 'stop' (the run ends with Webrun.GuardrailStopped), or undefined to leave it unanswered (the run ends with
   * Webrun.GuardrailUnanswered at the question's timeout, scaled). @default nobody answers
   */
  onQuestion?: (question: LocalQuestion) => Promise<PersonsAnswer | 'stop' | undefined>;
  /** Called after each Lambda invocation with its handler and wall time (for cost figures). */
  onInvocation?: (handler: HandlerName | 'receiveDoorbell', ms: number) => void;
  /**
   * After a stop, how long steps still running may take to answer (a start-session in flight may be creating a
   * session that must then be terminated); and how long the runner's own terminate keeps trying again after a
   * transient error (a 503, a dropped connection). @default 30000
   */
  stopGraceMs?: number;
}

/** A guardrail question, as the local prompt shows it. */
export interface LocalQuestion {
  taskIndex: number;
  question: string;
  deadline: string;
  /** The session's live view (a secret-grade link: shown to the person, never logged). */
  liveViewUrl?: string;
  /** Resolves when the question is no longer waiting (answered elsewhere, timed out, or the run ended). */
  closed: Promise<void>;
}

export interface LocalRunSummary {
  status: 'SUCCEEDED' | 'FAILED';
  /** The output, with every stored result read back into `result`. */
  output?: WorkflowOutput;
  error?: { name: string; cause: string };
  sessionId?: string;
  stats: {
    stateTransitions: number;
    lambdaInvocations: number;
    wallMs: number;
    /** The events the execution's history would hold deployed (at most 25,000). */
    historyEvents: number;
    /** The largest state input/output or task payload/result of the run, in bytes (at most 262,144). */
    largestPayloadBytes: number;
    /** Results written to the result store (too large for the state), read back into `output`. */
    storedResults: number;
  };
}

/** Mirrors how Lambda reports a thrown error to Step Functions: the name is the error, the cause a JSON envelope. */
function asLambdaError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const envelope = JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: [] });
  const lambdaError = new Error(envelope);
  lambdaError.name = e.name;
  return lambdaError;
}

/** The executor's event log entries (its types are not exported). */
type ExecutorEvent = {
  type: string;
  timestamp: number;
  state?: { name: string; type?: string; input: unknown; output?: unknown };
  Error?: string;
  Cause?: unknown;
};

function toStateEvent(e: ExecutorEvent): StateEvent | undefined {
  const at = e.timestamp;
  if (!e.state) return undefined;
  switch (e.type) {
    case 'StateEntered':
      return { type: 'entered', state: e.state.name, at, input: e.state.input };
    case 'StateExited':
      return { type: 'exited', state: e.state.name, at, input: e.state.input, output: e.state.output };
    case 'StateRetried':
      return { type: 'retried', state: e.state.name, at };
    case 'StateFailed':
      return { type: 'failed', state: e.state.name, at, error: e.Error, cause: String(e.Cause ?? '') };
    case 'StateCaught':
      return { type: 'caught', state: e.state.name, at };
    default:
      return undefined;
  }
}

const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };
/** Steps whose calls a stop cancels; start-session is awaited instead (its answer may be a session to end). */
const CANCELLABLE: ReadonlySet<HandlerName> = new Set(['sendTask', 'pollTask']);
const ABORTED = { name: 'States.Aborted', cause: 'The execution was stopped before it finished.' };
/** The shortest wait for a doorbell, whatever the wait scale. */
const MIN_TOKEN_WAIT_MS = 1_000;
/** Errors after which a terminate may be tried again (it is idempotent): the API busy, a dropped connection. */
const TRANSIENT = IDEMPOTENT_RETRY_ERRORS;
/** The runner's terminate: this many attempts at most, whatever the wait scale, waiting 1 s, 2 s, 4 s, ... (scaled) between them. */
const TERMINATE_ATTEMPTS = 5;
const TERMINATE_BACKOFF_MS = 1_000;

export async function runLocalWorkflow(options: LocalRunOptions): Promise<LocalRunSummary> {
  const started = Date.now();
  const scale = options.waitScale ?? 1;
  let execution: ReturnType<LocalWorkflow['machine']['run']> | undefined;
  const quotas = new QuotaGuard(() => execution?.abort());
  /** Lambda calls still running, each with the time its invocation ends (its Lambda timeout). */
  const inflight = new Map<Promise<unknown>, { handler: HandlerName; deadline: number }>();
  let lambdaInvocations = 0;
  if (!(scale >= 0) || !Number.isFinite(scale)) throw new RangeError(`waitScale must be a finite number >= 0, got ${scale}`);
  const emptyStats = () => ({ stateTransitions: 0, lambdaInvocations: 0, wallMs: Date.now() - started, historyEvents: 0, largestPayloadBytes: 0, storedResults: 0 });
  if (!options.input || tooDeep(options.input, MAX_INPUT_DEPTH) || bytesOf(options.input) > QUOTAS.maxPayloadBytes) {
    // aws-local-stepfunctions treats a falsy input (null, false, 0, "") as "no value" when it applies
    // `"input.$": "$"` and fails with States.Runtime, and overflows its stack on an input nested thousands deep
    // before the start step could refuse it: refuse them here with the error the start state raises deployed.
    // An input over 256 KiB starts no execution deployed (StartExecution refuses it; `webrun-sfn start` refuses it
    // first, as InvalidInput): here it is refused alike, not run into a States.DataLimitExceeded of its first state.
    const cause = { message: invalidInputMessage(options.input), sessionId: null, taskIndex: null, completed: [], sessionEnded: null };
    return { status: 'FAILED', error: { name: WebrunErrors.InvalidInput, cause: JSON.stringify(cause) }, stats: emptyStats() };
  }
  const workflow = options.workflow ?? builtWorkflow(options.completion ?? CompletionModes.poll);
  const store = folderResultStore(options.resultsDir ?? defaultResultsDir());
  const sessions = memorySessionRecords();
  const log = options.log ?? silentLog;
  const sleep = (ms: number, signal?: AbortSignal) => pause(ms * scale, signal);
  // Aborted when the run stops: cancels the calls of steps whose answer is not needed to clean up.
  const stopping = new AbortController();
  const deps: HandlerDeps = {
    client: async (o = {}) => new WebrunClient({ baseUrl: options.baseUrl, apiKey: options.apiKey, sleep, ...o }),
    siteCredentials: options.siteCredentials,
    pollPlan: workflow.settings.pollPlan,
    results: store,
    placement: { inlineResultBytes: workflow.settings.inlineResultBytes },
    sessions,
    sleep,
    log,
    waitScale: scale,
  };
  // Completion by webhook: the receiver on loopback, waiting tasks in memory, a registry of waiting states.
  const tokens = localTaskTokens();
  let receiver: LocalReceiver | undefined;
  if (Object.keys(workflow.waitsForToken).length > 0) {
    receiver = await startReceiver(async (request) => {
      lambdaInvocations++;
      const invoked = Date.now();
      try {
        return await handlers.receiveDoorbell(request, { remainingMs: () => 30_000 });
      } finally {
        options.onInvocation?.('receiveDoorbell', Date.now() - invoked);
      }
    });
    deps.doorbell = { waiting: memoryWaitingTasks(), taskTokens: tokens, receiverUrl: receiver.url };
  }
  // Asking a person: the runner's question source answers the waiting Ask state through the same token registry.
  deps.questions = {
    async notify(notice) {
      const closed = tokens.settled(notice.token);
      // The question times out scaled like every wait (resumedOrTimedOut): the deadline a person is shown is that one.
      const deadline = new Date(Date.now() + Math.max(MIN_TOKEN_WAIT_MS, (Date.parse(notice.deadline) - Date.now()) * scale)).toISOString();
      const ask = options.onQuestion?.({ taskIndex: notice.taskIndex, question: notice.question, deadline, liveViewUrl: notice.liveViewUrl, closed });
      if (!ask) return;
      void ask.then(async (reply) => {
        if (reply === 'stop') {
          const { error, cause } = personStopped(notice.taskIndex);
          await tokens.fail(notice.token, error, cause);
        }
        else if (reply) await tokens.succeed(notice.token, reply);
      }, () => undefined);
    },
  };
  const handlers = makeHandlers(deps);
  const write = options.onProgress ?? (() => {});
  const tracker = new ProgressTracker(write);


  const taskResourceLocalHandlers = Object.fromEntries(
    Object.entries(workflow.taskHandlers).map(([stateName, handlerName]) => [
      stateName,
      async (input: unknown) => {
        // Let the event log catch up first, so a quota broken by the state before stops the run before this step acts.
        await new Promise(setImmediate);
        const waits = stateName in workflow.waitsForToken;
        // A lambda:invoke integration passes { FunctionName, Payload }; payloadResponseOnly passes the payload itself.
        let payload = waits ? (input as { Payload: Record<string, unknown> }).Payload : input;
        quotas.payload(payload, `The payload of task state "${stateName}"`);
        if (quotas.violation || stopping.signal.aborted) throw asLambdaError(new Error('The execution has ended; this step did not run.'));
        lambdaInvocations++;
        const deadline = Date.now() + workflow.timeouts[handlerName] * 1000;
        const ctx: InvocationContext = { remainingMs: () => deadline - Date.now(), signal: CANCELLABLE.has(handlerName) ? stopping.signal : undefined };
        // Each wait gets a token of its own, as Step Functions hands out ($$.Task.Token is one value locally).
        const token = waits ? `local-token-${randomUUID()}` : undefined;
        if (token) payload = { ...(payload as Record<string, unknown>), token };
        const resumed = token ? tokens.wait(token) : undefined;
        const invoked = Date.now();
        const call = handlers[handlerName](payload, ctx);
        call.then(() => options.onInvocation?.(handlerName, Date.now() - invoked), () => options.onInvocation?.(handlerName, Date.now() - invoked));
        inflight.set(call, { handler: handlerName, deadline });
        call.then(() => inflight.delete(call), () => inflight.delete(call));
        let result: unknown;
        try {
          result = await call;
        } catch (err) {
          if (token) tokens.forget(token);
          throw asLambdaError(err);
        }
        if (token && resumed) result = await resumedOrTimedOut(token, resumed, secondsAt(payload, workflow.waitsForToken[stateName]), invoked);
        quotas.payload(result, `The result of task state "${stateName}"`);
        return result as never;
      },
    ]),
  );
  const { waitTimeOverrides, retryIntervalOverrides } = scaledOverrides(workflow, scale);

  /**
   * What a state waiting on a token resumes with: the output SendTaskSuccess gave, the error SendTaskFailure gave, or
   * States.Timeout once its TimeoutSecondsPath (scaled like every wait) has passed since the state began (`entered`),
   * its Lambda's own time included, as Step Functions counts it.
   */
  async function resumedOrTimedOut(token: string, resumed: Promise<import('./doorbell').TokenOutcome>, waitSeconds: number | undefined, entered: number): Promise<unknown> {
    // Scaled like every wait, but never below a second: at --wait-scale 0 a doorbell still has time to ring.
    const limitMs = Math.max(MIN_TOKEN_WAIT_MS, (waitSeconds ?? 0) * 1000 * scale - (Date.now() - entered));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limitMs);
    });
    const stopped = new Promise<'stopped'>((resolve) => stopping.signal.addEventListener('abort', () => resolve('stopped'), { once: true }));
    const outcome = await Promise.race([resumed, timedOut, stopped]);
    clearTimeout(timer);
    if (outcome === 'timeout' || outcome === 'stopped') {
      tokens.forget(token);
      const err = new Error(outcome === 'timeout' ? 'The task was not resumed within its TimeoutSecondsPath.' : 'The execution has ended.');
      err.name = 'States.Timeout';
      throw err;
    }
    if ('error' in outcome) {
      // SendTaskFailure: the state fails with that error and cause, as sent (already a Lambda-style envelope).
      const err = new Error(outcome.cause);
      err.name = outcome.error;
      throw err;
    }
    return outcome.output;
  }

  // The Context Object fields the definition reads ($$.Execution.Id), shaped as in AWS.
  const executionName = `local-${randomUUID()}`;
  const executionArn = `arn:aws:states:local:000000000000:execution:webrun-sfn-local:${executionName}`;
  execution = workflow.machine.run(options.input as never, {
    overrides: { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides },
    context: { Execution: { Id: executionArn, Name: executionName }, Task: { Token: 'local-task-token' } },
  });
  const stop = () => {
    stopping.abort();
    execution?.abort();
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted) stop();

  const following = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<ExecutorEvent>) {
      if (event.type === 'StateEntered' && event.state) quotas.entered(event.state.name, event.state.type ?? '', event.state.input, event.state.name in workflow.waitsForToken);
      else if (event.type === 'StateExited' && event.state) quotas.exited(event.state.name, event.state.output);
      else if (event.type === 'StateRetried') quotas.retried(event.state !== undefined && event.state.name in workflow.waitsForToken);
      else if (event.type === 'StateFailed' && event.state?.type === 'Fail') quotas.failed(event.state.name, String(event.Cause ?? ''));
      const stateEvent = toStateEvent(event);
      if (!stateEvent) continue;
      options.onStateEvent?.(stateEvent);
      tracker.handle(stateEvent);
    }
  })();

  let summary: Pick<LocalRunSummary, 'status' | 'output' | 'error'>;
  try {
    const output = (await execution.result) as WorkflowOutput | null;
    summary = output === null ? { status: 'FAILED', error: ABORTED } : { status: 'SUCCEEDED', output };
  } catch (err) {
    summary = { status: 'FAILED', error: executionError(err) };
  } finally {
    options.signal?.removeEventListener('abort', stop);
  }
  // The log closes with the execution; a bounded wait keeps a broken executor from holding the run.
  await atMost(following.catch(() => {}), 1_000);
  if (quotas.violation) summary = violated(quotas.violation);

  // Steps still running after a stop: cancel what may be cancelled, wait a while for the rest (start-session may
  // be creating a session, which its handler records before it returns).
  stopping.abort();
  if (inflight.size > 0) {
    write(`  waiting for ${inflight.size} step(s) still running, to end any session they open`);
    await atMost(Promise.allSettled([...inflight.keys()]), options.stopGraceMs ?? 30_000);
  }

  // Every recorded session that no terminate ended is ended here, as the deployed session cleanup does, and as it
  // is retried there (Lambda's retries), a transient refusal is tried again within the stop grace.
  const cleanupEndsAt = Date.now() + (options.stopGraceMs ?? 30_000);
  // Read as the deployed cleanup reads it: without a recorded session the execution is marked stopped in the same
  // step, so a start-session still running past the grace cannot record the session it opens, and terminates it
  // itself (lambdas/shared/session-records.ts) rather than leave it open with nothing to find it.
  const record = await sessions.stoppedUnlessStarted(executionArn);
  const session: { sessionEnded: boolean | null; cleanupError?: string } = { sessionEnded: record ? true : null };
  if (record && record.endedAt === undefined) {
    try {
      lambdaInvocations++;
      const client = await deps.client();
      const outcome = await retryingTransient(
        () => endRecordedSession({ client: async () => client, sessions, log }, executionArn, record.sessionId),
        (attempt) => TERMINATE_BACKOFF_MS * 2 ** (attempt - 1) * scale,
        cleanupEndsAt,
        (err) => write(`  terminate of session ${record.sessionId} failed (${(err as Error).name}), trying again`),
      );
      write(`  session ${record.sessionId} ${outcome === 'terminated' ? 'terminated' : 'had already ended'} by the runner's cleanup`);
    } catch (err) {
      write(`  could not terminate session ${record.sessionId}: ${(err as Error).message}`);
      session.sessionEnded = false;
      session.cleanupError = (err as Error)?.name ?? 'Error';
    }
  }
  // Such a start (or any step still running) must not be cut off by the process exiting: wait for it, no longer
  // than its Lambda could run deployed.
  if (inflight.size > 0) {
    const running = [...inflight.values()];
    const untilMs = Math.max(0, ...running.map((r) => r.deadline - Date.now()));
    const note = running.some((r) => r.handler === 'startSession') ? 'start-session has not answered yet: a session it opens now cannot be recorded, and is terminated by it' : `${running.length} step(s) still running`;
    write(`  ${note}; waiting for that before exiting (at most ${Math.ceil(untilMs / 1000)} s)`);
    await atMost(Promise.allSettled([...inflight.keys()]), untilMs);
  }
  // A failure that skipped the workflow's failure step (a stop, the execution timeout, a broken quota) keeps the
  // results the run had completed, with its session, in the cause, as that step would have.
  // A stop while start-session ran has no such state data yet, but a recorded session: the report names it.
  const soFar = tracker.soFar ?? (record ? { sessionId: null, taskIndex: null, completed: [] } : undefined);
  if (summary.error && soFar) {
    summary.error = { ...summary.error, cause: causeKeepingResults(summary.error.cause, { ...soFar, sessionId: soFar.sessionId ?? record?.sessionId ?? null }, session) };
  }

  const kept = summary.output?.tasks ?? parseFailureCause(summary.error?.cause)?.completed ?? [];
  const storedResults = kept.filter((t) => t.resultRef !== undefined).length;
  await receiver?.close();
  if (summary.output) {
    try {
      summary.output = await resolveOutput(summary.output, store);
    } catch (err) {
      write(`  could not read a stored result back: ${(err as Error).message}`);
    }
  }
  return {
    ...summary,
    sessionId: summary.output?.sessionId ?? record?.sessionId,
    stats: {
      stateTransitions: tracker.stateTransitions,
      lambdaInvocations,
      wallMs: Date.now() - started,
      historyEvents: Math.min(QUOTAS.maxHistoryEvents, quotas.historyEvents + 1),
      largestPayloadBytes: quotas.largestPayloadBytes,
      storedResults,
    },
  };
}

/** The number a TimeoutSecondsPath (`$.a.b`) names in a payload, if any. */
function secondsAt(payload: unknown, timeoutPath: string | undefined): number | undefined {
  if (!timeoutPath?.startsWith('$.')) return undefined;
  let at: unknown = payload;
  for (const key of timeoutPath.slice(2).split('.')) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
  return typeof at === 'number' ? at : undefined;
}

/**
 * `attempt()`, tried again after an error a repeat may cure (TRANSIENT), at most TERMINATE_ATTEMPTS times, waiting
 * `waitMs(n)` after the n-th failure, and never waiting past `endsAt`. Throws the last error.
 */
async function retryingTransient<T>(attempt: () => Promise<T>, waitMs: (failed: number) => number, endsAt: number, onRetry: (err: unknown) => void): Promise<T> {
  for (let failed = 1; ; failed++) {
    try {
      return await attempt();
    } catch (err) {
      const wait = waitMs(failed);
      if (failed >= TERMINATE_ATTEMPTS || !TRANSIENT.has((err as Error)?.name) || Date.now() + wait > endsAt) throw err;
      onRetry(err);
      await pause(wait);
    }
  }
}

/** Waits for `work`, but no longer than `ms` (and holds the process no longer than the work does). */
async function atMost(work: Promise<unknown>, ms: number): Promise<void> {
  const timeUp = new AbortController();
  await Promise.race([work, pause(ms, timeUp.signal)]);
  timeUp.abort();
}

function violated(v: QuotaViolation): Pick<LocalRunSummary, 'status' | 'error'> {
  return { status: 'FAILED', error: { name: v.name, cause: v.cause } };
}

function invalidInputMessage(input: unknown): string {
  try {
    validateWorkflowInput(input);
  } catch (err) {
    return (err as Error).message;
  }
  return 'input: is not valid';
}

function executionError(err: unknown): { name: string; cause: string } {
  const e = err as { name?: string; message?: string; cause?: { name?: string; message?: string } };
  if (e?.name === 'ExecutionAbortedError') return ABORTED;
  if (e?.name === 'ExecutionTimeoutError') return { name: 'States.Timeout', cause: 'The execution reached its timeout.' };
  if (e?.name === 'ExecutionError' && e.cause) return { name: e.cause.name ?? 'Error', cause: e.cause.message ?? '' };
  return { name: e?.name ?? 'Error', cause: e?.message ?? String(err) };
}

/** Wait and Retry overrides for a wait scale; at 1 the definition's own timings (with backoff and jitter) apply. */
export function scaledOverrides(workflow: LocalWorkflow, scale: number) {
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number[]> = {};
  if (scale === 1) return { waitTimeOverrides, retryIntervalOverrides };
  for (const [name, state] of Object.entries(workflow.definition.States)) {
    if (state.Type === 'Wait' && typeof state.Seconds === 'number') waitTimeOverrides[name] = state.Seconds * 1000 * scale;
    if (state.Retry) retryIntervalOverrides[name] = state.Retry.map((r) => (r.IntervalSeconds ?? 1) * 1000 * scale);
  }
  return { waitTimeOverrides, retryIntervalOverrides };
}
