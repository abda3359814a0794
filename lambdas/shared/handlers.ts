/**
 * The four workflow steps as pure functions of their dependencies. The Lambda entry points (lambdas/*.ts) bind
 * them to Secrets Manager and the Powertools logger; the local runner binds the very same functions to
 * WEBRUN_API_KEY and a progress display. Nothing here knows which of the two it runs in.
 */
import { MAX_CAUSE_CHARS, WorkflowMetricNames as M, type PollPlan } from './contract';
import { GuardrailTriggered, InvalidInput, PollTimeout, TaskFailed } from './errors';
import { validateWorkflowInput } from './input';
import { noMetrics, type WorkflowMetrics } from './metrics';
import { redactDeep } from './redact';
import { noCredentials, resolveSiteCredentials, type SiteCredentialResolver } from './site-credentials';
import type { TaskOutcome, TaskResult, WorkflowTask } from './types';
import type { WebrunClient } from './webrun-client';

export interface Log {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface HandlerDeps {
  client: () => Promise<WebrunClient>;
  /** Reads the login fields behind a task's `secrets` references. @default none: such a task fails with ConfigError */
  siteCredentials?: SiteCredentialResolver;
  /** Custom metrics (Powertools in Lambda). @default none (the local runner) */
  metrics?: WorkflowMetrics;
  pollPlan: PollPlan;
  sleep: (ms: number) => Promise<void>;
  log: Log;
}

/** The loop state the state machine carries between tasks. */
export interface WorkflowState {
  sessionId: string;
  tasks: WorkflowTask[];
  taskCount: number;
  index: number;
  results: TaskResult[];
}

/** What send and poll hand back to the state machine for the current task. */
export interface TaskProgress {
  status: 'pending' | 'completed';
  taskId: string | null;
  attempt: number;
  maxAttempts: number;
  /** When send-message was called (epoch ms), passed back to each poll for the task-duration metric. */
  sentAt: number;
  results: TaskResult[];
}

export interface SendTaskEvent {
  sessionId: string;
  index: number;
  task: WorkflowTask;
  results: TaskResult[];
}

export interface PollTaskEvent {
  sessionId: string;
  index: number;
  taskId: string;
  attempt: number;
  maxAttempts: number;
  results: TaskResult[];
}

export interface TerminateEvent {
  sessionId?: string;
  /** Present on the failure path: the error the Catch caught (`{ Error, Cause }`). */
  failure?: { Error?: string; Cause?: string };
  index?: number;
  results?: TaskResult[];
}

export interface TerminateOutcome {
  sessionId: string | null;
  terminated: boolean;
  /** The session had already ended (expired or terminated before): nothing was open. */
  alreadyEnded: boolean;
  /** On the failure path: the error name and the cause the execution fails with. */
  error?: string;
  cause?: string;
}

type Json = Record<string, unknown>;

function record(event: unknown, handler: string): Json {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidInput(`${handler} event`, 'must be an object');
  }
  return event as Json;
}

function str(event: Json, field: string, handler: string): string {
  const v = event[field];
  if (typeof v !== 'string' || v === '') throw new InvalidInput(`${handler} event.${field}`, 'must be a non-empty string');
  return v;
}

function int(event: Json, field: string, handler: string): number {
  const v = event[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidInput(`${handler} event.${field}`, 'must be a non-negative integer');
  return v;
}

function results(event: Json, handler: string): TaskResult[] {
  const v = event.results ?? [];
  if (!Array.isArray(v)) throw new InvalidInput(`${handler} event.results`, 'must be an array');
  return v as TaskResult[];
}

/** Poll invocations allowed for a task: enough to cover its maxDuration plus grace, at one per poll cycle. */
export function maxPollAttempts(maxDurationMs: number, plan: PollPlan): number {
  const cycleMs = Math.max(1, plan.intervalSeconds + plan.holdSeconds) * 1000;
  return Math.max(1, Math.ceil((maxDurationMs + plan.graceSeconds * 1000) / cycleMs));
}

/** GETs one poll invocation makes: one now, then one every `everySeconds` within `holdSeconds`. */
export function getsPerPoll(plan: PollPlan): number {
  if (plan.holdSeconds <= 0 || plan.everySeconds <= 0) return 1;
  return Math.floor(plan.holdSeconds / plan.everySeconds) + 1;
}

/**
 * When the task was sent (epoch ms): the poll event's `sentAt`, else (an execution started by a definition that
 * did not pass it) estimated from the poll cycles before this one, the send-message hold not counted.
 */
export function taskSentAt(event: Record<string, unknown>, attempt: number, plan: PollPlan, pollStartedAt: number): number {
  if (typeof event.sentAt === 'number' && Number.isFinite(event.sentAt)) return event.sentAt;
  return pollStartedAt - ((attempt - 1) * (plan.intervalSeconds + plan.holdSeconds) + plan.intervalSeconds) * 1000;
}

/** Raises the final outcomes; returns the results with a completed task appended. */
function settle(outcome: TaskOutcome, index: number, prior: TaskResult[], log: Log, sessionId: string, metrics: WorkflowMetrics = noMetrics, elapsedMs?: number): TaskResult[] | undefined {
  switch (outcome.kind) {
    case 'pending':
      return undefined;
    case 'completed': {
      const result: TaskResult = { index, taskId: outcome.taskId ?? null, status: 'completed', result: outcome.data };
      if (outcome.usage) result.usage = outcome.usage;
      log.info('task completed', { sessionId, taskIndex: index, taskId: outcome.taskId, usage: outcome.usage });
      metrics.add(M.tasksCompleted, 1);
      if (elapsedMs !== undefined) metrics.add(M.taskDuration, elapsedMs);
      return [...prior.filter((r) => r.index !== index), result];
    }
    case 'guardrail':
      log.warn('task stopped at a guardrail', { sessionId, taskIndex: index, taskId: outcome.taskId, guardrailType: outcome.guardrailType });
      metrics.add(M.guardrailsTriggered, 1);
      throw new GuardrailTriggered(outcome.question);
    case 'failed':
      log.warn('task failed', { sessionId, taskIndex: index, taskId: outcome.taskId });
      metrics.add(M.tasksFailed, 1);
      throw new TaskFailed(`Task ${index} failed: ${outcome.reason}`);
  }
}

export function makeHandlers(deps: HandlerDeps) {
  const { log, pollPlan } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const siteCredentials = deps.siteCredentials ?? noCredentials;

  /** Validates the execution input (`{ input }`, as the state machine passes it), then starts the session. */
  async function startSession(raw: unknown): Promise<WorkflowState> {
    const input = validateWorkflowInput(record(raw, 'startSession').input);
    const client = await deps.client();
    const session = await client.startSession(input.session);
    log.info('session started', { sessionId: session.sessionId, taskCount: input.tasks.length, balance: session.balance });
    metrics.add(M.sessionsStarted, 1);
    return { sessionId: session.sessionId, tasks: input.tasks, taskCount: input.tasks.length, index: 0, results: [] };
  }

  /** Sends the current task; a task that finished within the call is recorded at once. */
  async function sendTask(raw: unknown): Promise<TaskProgress> {
    const event = record(raw, 'sendTask');
    const sessionId = str(event, 'sessionId', 'sendTask');
    const index = int(event, 'index', 'sendTask');
    const prior = results(event, 'sendTask');
    const task = record(event.task, 'sendTask') as unknown as WorkflowTask;
    const client = await deps.client();
    // Resolved here, at send time, so the values exist only in this invocation's memory and the request body.
    const credentials = task.secrets ? await resolveSiteCredentials(task.secrets, siteCredentials) : [];
    const sentAt = Date.now();
    const outcome = await client.sendTask(sessionId, task, credentials);
    const maxAttempts = maxPollAttempts(task.maxDuration, pollPlan);
    const done = settle(outcome, index, prior, log, sessionId, metrics, Date.now() - sentAt);
    const taskId = outcome.taskId ?? null;
    if (done) return { status: 'completed', taskId, attempt: 0, maxAttempts, sentAt, results: done };
    log.info('task pending', { sessionId, taskIndex: index, taskId });
    return { status: 'pending', taskId, attempt: 0, maxAttempts, sentAt, results: prior };
  }

  /** Polls a pending task, holding for up to `holdSeconds`; gives up with PollTimeout after `maxAttempts`. */
  async function pollTask(raw: unknown): Promise<TaskProgress> {
    const event = record(raw, 'pollTask');
    const sessionId = str(event, 'sessionId', 'pollTask');
    const taskId = str(event, 'taskId', 'pollTask');
    const index = int(event, 'index', 'pollTask');
    const maxAttempts = int(event, 'maxAttempts', 'pollTask');
    const attempt = int(event, 'attempt', 'pollTask') + 1;
    const prior = results(event, 'pollTask');
    // The task (as the state machine validated it) tells whether its answer may carry credentials to redact.
    const refs = (event.task as Partial<WorkflowTask> | undefined)?.secrets ?? [];
    const client = await deps.client();
    const gets = getsPerPoll(pollPlan);
    const sentAt = taskSentAt(event, attempt, pollPlan, Date.now());
    metrics.add(M.pollAttempts, 1);
    for (let i = 0; i < gets; i++) {
      if (i > 0) await deps.sleep(pollPlan.everySeconds * 1000);
      let outcome = await client.getTask(sessionId, taskId);
      if (outcome.kind !== 'pending' && refs.length > 0) {
        // The final answer may repeat what the agent typed: read the task's credentials again to redact them.
        // If they cannot be read, the run fails (ConfigError) rather than put them into the result or cause.
        const credentials = await resolveSiteCredentials(refs, siteCredentials);
        outcome = redactDeep(outcome, credentials.flatMap((c) => Object.values(c.fields)));
      }
      const done = settle(outcome, index, prior, log, sessionId, metrics, Math.max(0, Date.now() - sentAt));
      if (done) return { status: 'completed', taskId, attempt, maxAttempts, sentAt, results: done };
    }
    if (attempt >= maxAttempts) {
      log.warn('task poll cap reached', { sessionId, taskIndex: index, taskId, attempt });
      metrics.add(M.tasksFailed, 1);
      throw new PollTimeout(`Task ${index} was still pending after ${attempt} polls; the workflow gave up on it.`);
    }
    log.info('task pending', { sessionId, taskIndex: index, taskId, attempt });
    return { status: 'pending', taskId, attempt, maxAttempts, sentAt, results: prior };
  }

  /**
   * Ends the session (idempotently) and, on the failure path, writes the failure's report: the original
   * error name and a JSON cause with one sentence, the sessionId, the failing task and the completed results.
   */
  async function terminateSession(raw: unknown): Promise<TerminateOutcome> {
    const event = record(raw, 'terminateSession') as TerminateEvent;
    const sessionId = typeof event.sessionId === 'string' && event.sessionId !== '' ? event.sessionId : null;
    let terminated = false;
    let alreadyEnded = false;
    if (sessionId) {
      const client = await deps.client();
      ({ terminated } = await client.terminateSession(sessionId));
      if (terminated) metrics.add(M.sessionsTerminated, 1);
      alreadyEnded = !terminated;
      log.info(terminated ? 'session terminated' : 'session was already ended', { sessionId });
    }
    const outcome: TerminateOutcome = { sessionId, terminated, alreadyEnded };
    if (event.failure) Object.assign(outcome, failureReport(event, sessionId));
    return outcome;
  }

  return { startSession, sendTask, pollTask, terminateSession };
}

export type WorkflowHandlers = ReturnType<typeof makeHandlers>;

/** The one-sentence message of a caught error: Lambda wraps it as `{ errorType, errorMessage, trace }`. */
export function causeMessage(cause: string | undefined): string {
  if (!cause) return 'No cause was given.';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed?.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // not JSON: the cause is the message itself
  }
  return cause;
}

export function failureReport(event: TerminateEvent, sessionId: string | null): { error: string; cause: string } {
  const error = event.failure?.Error || 'Webrun.ApiError';
  const completed = Array.isArray(event.results) ? event.results : [];
  const body = {
    message: causeMessage(event.failure?.Cause),
    sessionId,
    taskIndex: typeof event.index === 'number' ? event.index : null,
    completed,
  };
  let cause = JSON.stringify(body);
  // Keep under the cause limit: drop the largest results' payloads first (every task keeps its index and taskId),
  // then shorten an oversized message, and say so.
  const bySize = completed.map((r, i) => ({ i, size: (JSON.stringify(r?.result) ?? '').length })).sort((x, y) => y.size - x.size);
  for (const { i, size } of bySize) {
    if (cause.length <= MAX_CAUSE_CHARS) break;
    body.completed = body.completed.map((r, j) => (j === i ? { ...r, result: { omitted: `result too large for the failure cause (${size} characters)` } } : r));
    cause = JSON.stringify({ ...body, truncated: true });
  }
  if (cause.length > MAX_CAUSE_CHARS) {
    body.message = `${body.message.slice(0, 2_000)}…`;
    cause = JSON.stringify({ ...body, truncated: true });
  }
  return { error, cause };
}
