/**
 * The workflow steps as pure functions of their dependencies. The Lambda entry points (lambdas/*.ts) bind them to
 * Secrets Manager, S3, DynamoDB and Powertools; the local runner binds the very same functions to WEBRUN_API_KEY, a
 * results folder, in-memory session records and a progress display. Nothing here knows which of the two it runs in.
 *
 * Each step gets the state's `run` and `loop` (lambdas/shared/state.ts) and returns the new `loop`, so a result is
 * in the state once, whatever the step; results too large for the state go to the result store.
 */
import { DOORBELL_GRACE_SECONDS, LIMITS, MAX_CAUSE_CHARS, QUOTAS, type AnsweredGuardrail, IDEMPOTENT_RETRY_ERRORS, RETRY_IDEMPOTENT_ONLY_ERRORS, RETRY_SAFE_ERRORS, WebrunErrors, WorkflowMetricNames as M, type FailureCause, type PollPlan, type TaskResult, type WorkflowOutput, type WebrunErrorName } from './contract';
import { ApiError, BudgetExceeded, ConfigError, GuardrailTriggered, InsufficientBalance, InvalidInput, isWebrunError, PollTimeout, ResultStoreError, TaskFailed, UnexpectedResponse } from './errors';
import { decide, DEFAULT_MAX_ANSWERS, secretAnswers } from './guardrails';
import { validateWorkflowInput } from './input';
import { noMetrics, type WorkflowMetrics } from './metrics';
import { redactOutcome, redactText } from './redact';
import { keepsInline, storeResult, type ResultPlacement, type ResultStore } from './result-store';
import type { SessionRecords } from './session-records';
import { noCredentials, resolveSiteCredentials, type SiteCredentialResolver } from './site-credentials';
import { resultKey, type DoorbellAnswer, type DoorbellRequest, type FailureEvent, type FailureReport, type LoopState, type PendingTask, type PersonsAnswer, type Question, type RunState, type StartEvent, type StepEvent, type WorkflowState } from './state';
import type { TaskTokens } from './task-tokens';
import type { SessionOptions, SiteCredentialRef, TaskOutcome, WorkflowTask } from './types';
import { digest, sameSecret, unguessable, waitingKey, type WaitingTask, type WaitingTasks } from './waiting-tasks';
import { clipped, type WebrunClient } from './webrun-client';

export interface Log {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What one invocation knows of its surroundings. */
export interface InvocationContext {
  /** Milliseconds this invocation has left (Lambda's `getRemainingTimeInMillis`). @default unbounded */
  remainingMs?: () => number;
  /** Aborted when the local runner is stopped: calls in flight are cancelled. */
  signal?: AbortSignal;
}

export interface ClientOptions {
  signal?: AbortSignal;
  /** Epoch ms by which calls must have answered. */
  deadlineAt?: number;
}

export interface HandlerDeps {
  client: (options?: ClientOptions) => Promise<WebrunClient>;
  /** Reads the login fields behind a task's `secrets` references. @default none: such a task fails with ConfigError */
  siteCredentials?: SiteCredentialResolver;
  /** Custom metrics (Powertools in Lambda). @default none (the local runner) */
  metrics?: WorkflowMetrics;
  pollPlan: PollPlan;
  /** Where results too large for the state are written. */
  results: ResultStore;
  placement: ResultPlacement;
  /** Which session each execution opened, and whether it was ended. */
  sessions: SessionRecords;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  log: Log;
  now?: () => number;
  /** Completion by webhook: where waiting tasks are kept, how executions resume, and the receiver's public URL. */
  doorbell?: { waiting: WaitingTasks; taskTokens: TaskTokens; receiverUrl: string };
  /** Tells a person a guardrail question waits for them (`guardrails.ask`). @default none: asking fails with ConfigError */
  questions?: QuestionNotifier;
  /**
   * The local runner's --wait-scale, when it shortens waits (0 < scale < 1): a poll invocation then holds for that
   * share of its real time, so a task gets proportionally more of them, and keeps the real time its maxDuration and
   * grace allow (else a task pending 45 s failed with PollTimeout at the README's demo scale of 0.1, against the
   * real API too). @default 1 (deployed)
   */
  waitScale?: number;
}

/** A guardrail question for a person, as the notification carries it. */
export interface QuestionNotice {
  executionArn: string;
  taskIndex: number;
  question: string;
  /** ISO time after which the run ends with Webrun.GuardrailUnanswered. */
  deadline: string;
  /** The session's live view: a secret-grade link, in the notification only (never in logs or output). */
  liveViewUrl?: string;
  /** The task token the answer resumes (the local prompt uses it; deployed, the CLI finds it in the history). */
  token: string;
}

export interface QuestionNotifier {
  notify(notice: QuestionNotice): Promise<void>;
}

/** Where a task stands while it is followed: the step's event, its id, when it was sent, what was answered. */
interface Following {
  event: StepEvent;
  taskId: string;
  sentAt: number;
  answered: readonly AnsweredGuardrail[];
  /** The task's own guardrails when the event carries no tasks (the receiver has them from the waiting record). */
  taskGuardrails?: WorkflowTask['guardrails'];
  /**
   * Called before a rule's answer is sent, with the answers as they will be: false when another caller (a second
   * doorbell, the send step's own look) answers this question, which is then not answered twice.
   */
  claimAnswer?: (answered: readonly AnsweredGuardrail[]) => Promise<boolean>;
}

/** What following one answer gave. */
type Followed =
  | { kind: 'done'; loop: LoopState }
  | { kind: 'pending'; answered: AnsweredGuardrail[] }
  | { kind: 'question'; answered: AnsweredGuardrail[]; question: Question };

/** The doorbell's name in the API's webhook object. */
const WEBHOOK_NAME = 'webrun-sfn';

/** Time kept back from an invocation's deadline for returning its answer. */
const SAFETY_MS = 2_000;
/** The longest a GET of a task may take (the client's default call timeout). */
const GET_BUDGET_MS = 15_000;
/** Terminate attempts on the failure path before the report says the session's end is not confirmed. */
const FAILURE_TERMINATE_ATTEMPTS = 4;
type GuardrailRule = NonNullable<NonNullable<WorkflowTask['guardrails']>['rules']>[number];
const TRANSIENT: ReadonlySet<string> = new Set([...IDEMPOTENT_RETRY_ERRORS, WebrunErrors.UnexpectedResponse]);

/**
 * An AWS call that failed after the SDK's own retries (Secrets Manager throttled while a task's secrets are read
 * again to redact its answer, say): the SDK marks its errors with `$metadata`. Not the task's fault, nor the API's.
 */
function awsCallFailed(err: unknown): boolean {
  return typeof err === 'object' && err !== null && '$metadata' in err;
}

type Json = Record<string, unknown>;

function object(value: unknown, field: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidInput(field, 'must be an object');
  return value as Json;
}

function str(event: Json, field: string, at: string): string {
  const v = event[field];
  if (typeof v !== 'string' || v === '') throw new InvalidInput(`${at}.${field}`, 'must be a non-empty string');
  return v;
}

function int(event: Json, field: string, at: string): number {
  const v = event[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidInput(`${at}.${field}`, 'must be a non-negative integer');
  return v;
}

/** Checks the parts of a step's event the handlers rely on (the state machine built it from the validated input). */
export function parseStepEvent(raw: unknown, handler: string): StepEvent {
  const event = object(raw, `${handler} event`);
  const run = object(event.run, `${handler} event.run`);
  const loop = object(event.loop, `${handler} event.loop`);
  str(run, 'sessionId', `${handler} event.run`);
  if (!Array.isArray(run.tasks)) throw new InvalidInput(`${handler} event.run.tasks`, 'must be an array');
  int(loop, 'index', `${handler} event.loop`);
  if (!Array.isArray(loop.results)) throw new InvalidInput(`${handler} event.loop.results`, 'must be an array');
  if (loop.status !== 'ready' && loop.status !== 'pending' && loop.status !== 'question') throw new InvalidInput(`${handler} event.loop.status`, 'must be "ready", "pending" or "question"');
  return { executionArn: typeof event.executionArn === 'string' ? event.executionArn : 'unknown-execution', run: run as unknown as RunState, loop: loop as unknown as LoopState };
}

/** Poll invocations allowed for a task: enough to cover its maxDuration plus grace, at one per poll cycle. */
export function maxPollAttempts(maxDurationMs: number, plan: PollPlan): number {
  const cycleMs = Math.max(1, plan.intervalSeconds + plan.holdSeconds) * 1000;
  return Math.max(1, Math.ceil((maxDurationMs + plan.graceSeconds * 1000) / cycleMs));
}

/**
 * The most history events a run of `tasks` can write with this poll plan, each task polled to its cap: 7 per task
 * (its send and the choice after it) and 9 per poll cycle (wait, poll, choice), plus the start, the end and the
 * execution's own. A plan that polls often without holding (pollInterval 1 s, pollHold 0) reaches Step Functions'
 * 25,000 with 20 long tasks; such an input is refused before any session, rather than failing on the way.
 */
export function worstCaseHistoryEvents(tasks: ReadonlyArray<Pick<WorkflowTask, 'maxDuration' | 'guardrails'>>, plan: PollPlan, session?: Pick<SessionOptions, 'guardrails'>): number {
  return 16 + tasks.reduce((sum, t) => {
    // A question for a person adds its own steps (next step?, ask, answer), up to the task's maxAnswers.
    const asks = (t.guardrails?.ask ?? session?.guardrails?.ask) ? (t.guardrails?.maxAnswers ?? session?.guardrails?.maxAnswers ?? DEFAULT_MAX_ANSWERS) * 13 : 0;
    return sum + 7 + 9 * maxPollAttempts(t.maxDuration, plan) + asks;
  }, 0);
}

function checkHistoryBudget(tasks: readonly WorkflowTask[], plan: PollPlan, session: SessionOptions): void {
  const events = worstCaseHistoryEvents(tasks, plan, session);
  if (events <= QUOTAS.maxHistoryEvents) return;
  throw new InvalidInput(
    'tasks',
    `could need ${events} history events polled to their maxDuration with this deployment's poll plan (every ${plan.intervalSeconds} s, holding ${plan.holdSeconds} s), more than the ${QUOTAS.maxHistoryEvents} an execution holds: send fewer tasks or shorter maxDurations, or deploy with a longer pollHold`,
  );
}

/** GETs one poll invocation makes: one now, then one every `everySeconds` within `holdSeconds`. */
export function getsPerPoll(plan: PollPlan): number {
  if (plan.holdSeconds <= 0 || plan.everySeconds <= 0) return 1;
  return Math.floor(plan.holdSeconds / plan.everySeconds) + 1;
}

export function makeHandlers(deps: HandlerDeps) {
  const { log, pollPlan } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const siteCredentials = deps.siteCredentials ?? noCredentials;
  const now = deps.now ?? Date.now;
  const waitScale = deps.waitScale !== undefined && deps.waitScale > 0 && deps.waitScale < 1 ? deps.waitScale : 1;
  /**
   * A pending task's poll cap: maxPollAttempts, in real time where waits are scaled down (each poll then holds only
   * its share of real time), yet never so many that the run could pass the history quota, which the local runner
   * enforces as Step Functions does: at a very small scale a task gets less real time than its maxDuration.
   */
  const pollCap = (run: RunState, maxDurationMs: number): number => {
    const cap = maxPollAttempts(maxDurationMs, pollPlan);
    if (waitScale === 1) return cap;
    const room = Math.floor(QUOTAS.maxHistoryEvents / worstCaseHistoryEvents(run.tasks, pollPlan, { guardrails: run.guardrails }));
    return cap * Math.max(1, Math.min(Math.ceil(1 / waitScale), room));
  };

  /** The invocation's deadline for calls, leaving time to answer. */
  const deadlineOf = (ctx: InvocationContext): number | undefined => (ctx.remainingMs ? now() + ctx.remainingMs() - SAFETY_MS : undefined);
  const clientFor = (ctx: InvocationContext) => deps.client({ signal: ctx.signal, deadlineAt: deadlineOf(ctx) });

  /**
   * One answer of the API about the task at `loop.index`, followed: a completed task is kept (its result inline or
   * stored), a failed one raises TaskFailed, a guardrail question is answered by a rule (the task goes on), becomes
   * a question for a person, or raises GuardrailTriggered; and a running cost over the run's budget stops the task
   * and raises BudgetExceeded.
   */
  async function follow(at: Following, answer: TaskOutcome, client: WebrunClient): Promise<Followed> {
    const { event, taskId, sentAt } = at;
    const { run, loop } = event;
    const index = loop.index;
    const answered = [...at.answered];
    if (answer.kind === 'pending') checkBudget(event, answer.usage?.cost);
    // What the agent answers may repeat a secret it was given in this session: this task's answers from secrets, and
    // the earlier tasks' (and their site credentials). Redacted from every text kept: result, question, reason.
    const hidden = answer.kind === 'pending' ? [] : await secretsToHide(at, answered);
    const outcome = hidden.length > 0 ? redactOutcome(answer, hidden) : answer;
    switch (outcome.kind) {
      case 'pending':
        return { kind: 'pending', answered };
      case 'completed': {
        const entry: TaskResult = { index, taskId: outcome.taskId ?? (taskId || null), status: 'completed', result: outcome.data };
        if (outcome.usage) entry.usage = outcome.usage;
        if (answered.length > 0) entry.guardrails = answered;
        // Kept first: a result the store refuses is read again later, and counted then, once.
        const kept = await keep(event, entry);
        log.info('task completed', { sessionId: run.sessionId, taskIndex: index, taskId: entry.taskId, usage: outcome.usage });
        metrics.add(M.tasksCompleted, 1);
        metrics.add(M.taskDuration, Math.max(0, now() - sentAt));
        if (typeof outcome.usage?.cost === 'number') metrics.add(M.costUsd, outcome.usage.cost);
        return { kind: 'done', loop: kept };
      }
      case 'failed':
        log.warn('task failed', { sessionId: run.sessionId, taskIndex: index, taskId });
        metrics.add(M.tasksFailed, 1);
        throw new TaskFailed(`Task ${index + 1} failed: ${outcome.reason}`);
      case 'guardrail': {
        log.warn('task stopped at a guardrail', { sessionId: run.sessionId, taskIndex: index, taskId, guardrailType: outcome.guardrailType });
        metrics.add(M.guardrailsTriggered, 1);
        const task = run.tasks[index] as WorkflowTask | undefined;
        // Rules match the question as the agent asked it; what is kept of it (outcome.question) is redacted.
        const asked = answer.kind === 'guardrail' ? answer.question : outcome.question;
        const decision = await decide(asked, task?.guardrails ?? at.taskGuardrails, run.guardrails, answered, siteCredentials, now);
        if (decision.kind === 'fail') throw new GuardrailTriggered(outcome.question, decision.why);
        if (decision.kind === 'ask') return { kind: 'question', answered, question: { text: outcome.question, timeoutSeconds: decision.timeoutSeconds } };
        // The answer (perhaps from a secret) goes to the API only; the output records that a rule answered.
        const withThis = [...answered, { question: recorded(outcome.question), answeredBy: 'rule' as const }];
        if (at.claimAnswer && !(await at.claimAnswer(withThis))) {
          log.info('another look at the task answers its question', { sessionId: run.sessionId, taskIndex: index, taskId });
          return { kind: 'pending', answered };
        }
        try {
          await client.answerGuardrail(run.sessionId, taskId, decision.text);
        } catch (err) {
          // Refused or unknown: the next look at the task finds the question again (and answers it) or the task
          // going on. A final error (401, 402, 404, ...) ends the run.
          if (![...RETRY_SAFE_ERRORS, ...RETRY_IDEMPOTENT_ONLY_ERRORS].includes((err as Error)?.name as WebrunErrorName)) throw err;
          log.warn('could not send a rule\'s answer; the task will be looked at again', { sessionId: run.sessionId, taskIndex: index, taskId, error: (err as Error)?.name });
          return { kind: 'pending', answered };
        }
        answered.splice(0, answered.length, ...withThis);
        metrics.add(M.guardrailsAnswered, 1);
        log.info('guardrail answered by a rule', { sessionId: run.sessionId, taskIndex: index, taskId, answers: answered.length });
        return { kind: 'pending', answered };
      }
    }
  }

  /**
   * The secret values the agent of this session was given so far, which it may repeat in any later text: the answers
   * from secrets that rules sent (this task's and the earlier ones'; TOTP codes aside) and the earlier tasks' site
   * credentials (this task's are redacted where its answer is read). A secret that cannot be read fails the step
   * (ConfigError) rather than let its value through.
   */
  async function secretsToHide(at: Following, answered: readonly AnsweredGuardrail[]): Promise<string[]> {
    const { run, loop } = at.event;
    const tasks = run.tasks as Array<WorkflowTask | undefined>;
    const values = await secretAnswers(answered, tasks[loop.index]?.guardrails ?? at.taskGuardrails, run.guardrails, siteCredentials);
    for (const earlier of loop.results) {
      if (earlier.guardrails?.length) values.push(...(await secretAnswers(earlier.guardrails, tasks[earlier.index]?.guardrails, run.guardrails, siteCredentials)));
    }
    for (const earlier of tasks.slice(0, loop.index)) {
      if (earlier?.secrets?.length) values.push(...(await resolveSiteCredentials(earlier.secrets, siteCredentials)).flatMap((c) => Object.values(c.fields)));
    }
    // And every other answer from a secret the rules so far could have sent: a recorded question is kept short
    // (recorded), so the rule that answered it may no longer match it. Best effort: these may never have been read.
    const rules = [...(run.guardrails?.rules ?? []), ...[...tasks.slice(0, loop.index + 1).map((t) => t?.guardrails), at.taskGuardrails].flatMap((g) => g?.rules ?? [])];
    values.push(...(await ruleSecretValues(rules, true)));
    return values;
  }

  /**
   * The values the rules' `answerFromSecret` could send (TOTP seeds aside: a code is sent, never the seed). Best
   * effort: a secret that cannot be read is passed over; else its error fails the caller.
   */
  async function ruleSecretValues(rules: ReadonlyArray<GuardrailRule>, bestEffort: boolean): Promise<string[]> {
    const values: string[] = [];
    for (const from of rules.map((r) => r.answerFromSecret)) {
      if (!from || from.totp) continue;
      const read = siteCredentials(from.secret).then((fields) => fields[from.field]);
      const value = await (bestEffort ? read.catch(() => undefined) : read);
      if (value) values.push(value);
    }
    return values;
  }

  /**
   * The run's budget (`session.maxCostUsd`): the cost of the completed tasks plus, for a running one, its running
   * cost. Crossing it stops the running task (the session is then ended by the failure path).
   */
  function checkBudget(event: StepEvent, running: number | undefined): void {
    const max = event.run.maxCostUsd;
    if (max === undefined) return;
    // In micro-dollars, as totalUsage sums them: 0.1 + 0.2 is 0.30000000000000004 in floating point, not over $0.30.
    const spent = Math.round((event.loop.results.reduce((sum, r) => sum + (typeof r.usage?.cost === 'number' ? r.usage.cost : 0), 0) + (running ?? 0)) * 1e6) / 1e6;
    if (spent <= max) return;
    if (running !== undefined) metrics.add(M.costUsd, running);
    throw new BudgetExceeded(`The run has cost $${spent.toFixed(4)}, over its budget of $${max} (session.maxCostUsd).`);
  }

  /** The loop after a completed task: its result kept inline when it fits, else stored and referenced. */
  async function keep(event: StepEvent, entry: TaskResult): Promise<LoopState> {
    const prior = event.loop.results.filter((r) => r.index !== entry.index);
    const kept = keepsInline(entry, prior, deps.placement) ? entry : await storeResult(entry, deps.results, resultKey(event.executionArn, entry.index));
    return ready(event.run, event.loop.index + 1, [...prior, kept]);
  }

  /** Stops the task the budget no longer allows, then raises the budget error (for the failure path to end the session). */
  async function stopOverBudget(err: unknown, client: WebrunClient, sessionId: string): Promise<never> {
    if ((err as Error)?.name === WebrunErrors.BudgetExceeded) {
      await client.stopTask(sessionId).catch((stopErr: unknown) => log.warn('could not stop the task over budget', { sessionId, error: (stopErr as Error)?.name }));
    }
    throw err;
  }

  /** Validates the execution input (`{ input }`, as the state machine passes it), then starts and records the session. */
  async function startSession(raw: unknown, ctx: InvocationContext = {}): Promise<WorkflowState> {
    const event = object(raw, 'startSession event') as Partial<StartEvent>;
    const input = validateWorkflowInput(event.input);
    checkHistoryBudget(input.tasks, pollPlan, input.session);
    const executionArn = typeof event.executionArn === 'string' ? event.executionArn : 'unknown-execution';
    const client = await clientFor(ctx);
    const session = await client.startSession(input.session);
    try {
      // Before this state can end: a stop that lands now leaves a record the cleanup finds.
      await deps.sessions.started(executionArn, session.sessionId, { liveViewUrl: session.liveViewUrl });
    } catch (err) {
      // A session nothing can find would stay open and billed until it idles out: end it now. SessionStopped: the
      // execution was stopped while start-session ran, and its cleanup has already looked (./session-records.ts).
      if ((err as Error)?.name === 'SessionStopped') log.warn('the execution was stopped while its session started; terminating it', { sessionId: session.sessionId });
      else log.error('could not record the session; terminating it', { sessionId: session.sessionId, error: (err as Error)?.name });
      await client.terminateSession(session.sessionId).catch(() => undefined);
      throw err;
    }
    log.info('session started', { sessionId: session.sessionId, taskCount: input.tasks.length, balance: session.balance });
    metrics.add(M.sessionsStarted, 1);
    const min = input.session.minBalanceUsd;
    if (min !== undefined && typeof session.balance === 'number' && session.balance < min) {
      // Nothing else knows this session yet: end it here, before failing.
      await endSession(client, executionArn, session.sessionId).catch(() => undefined);
      throw new InsufficientBalance(`The account balance is $${session.balance}, under the $${min} the run needs (session.minBalanceUsd).`);
    }
    const run: RunState = {
      sessionId: session.sessionId,
      tasks: input.tasks,
      taskCount: input.tasks.length,
      ...(input.session.guardrails ? { guardrails: input.session.guardrails } : {}),
      ...(input.session.maxCostUsd !== undefined ? { maxCostUsd: input.session.maxCostUsd } : {}),
    };
    return { run, loop: ready(run, 0, []) };
  }

  /** Sends the current task; a task that finished within the call is recorded at once. */
  async function sendTask(raw: unknown, ctx: InvocationContext = {}): Promise<LoopState> {
    const event = parseStepEvent(raw, 'sendTask');
    const { run, loop } = event;
    const task = run.tasks[loop.index] as WorkflowTask | undefined;
    if (!task) throw new InvalidInput('sendTask event.loop.index', `names no task (there are ${run.tasks.length})`);
    const client = await clientFor(ctx);
    // Resolved here, at send time, so the values exist only in this invocation's memory and the request body.
    const credentials = task.secrets ? await resolveSiteCredentials(task.secrets, siteCredentials) : [];
    // What the run has spent already may be its whole budget: no task starts over it.
    checkBudget(event, undefined);
    const token = (raw as { token?: unknown }).token;
    if (typeof token === 'string' && token !== '') return sendAndWait(event, task, token, client, credentials);
    const sentAt = now();
    const outcome = await client.sendTask(run.sessionId, task, credentials, undefined, run);
    const taskId = outcome.taskId ?? '';
    const followed = await follow({ event, taskId, sentAt, answered: [] }, outcome, client).catch((err: unknown): Followed | Promise<never> => {
      // Completed, but its result could not be stored, or the secrets it must be redacted of could not be read for
      // now: the poll loop reads it again and keeps it (retried there), since this step must not be repeated (the
      // task would be sent twice).
      if ((err instanceof ResultStoreError || awsCallFailed(err)) && taskId) {
        log.warn('could not keep what a task answered within send-message: polling it instead', { sessionId: run.sessionId, taskIndex: loop.index, taskId, error: (err as Error)?.name });
        return { kind: 'pending', answered: [] };
      }
      return stopOverBudget(err, client, run.sessionId);
    });
    if (followed.kind === 'done') return followed.loop;
    if (!taskId) throw new UnexpectedResponse('send-message answered without a taskId, so the task cannot be followed.');
    const pending: PendingTask = { taskId, attempt: 0, maxAttempts: pollCap(run, task.maxDuration), sentAt, ...(followed.answered.length ? { answered: followed.answered } : {}) };
    if (followed.kind === 'question') return { ...loop, status: 'question', pending, question: followed.question };
    log.info('task pending', { sessionId: run.sessionId, taskIndex: loop.index, taskId });
    return { ...loop, status: 'pending', pending };
  }

  /** The completion-by-webhook dependencies, or a ConfigError naming what is missing. */
  function doorbell() {
    if (!deps.doorbell) throw new ConfigError('Completion by webhook is not configured here (no waiting-task store, task-token service or receiver URL).');
    return deps.doorbell;
  }

  /**
   * Completion by webhook: stores what resumes the execution, sends the task with a doorbell, and returns at once.
   * A task that ended within send-message (or before its id could be stored) resumes the execution from here; any
   * other resumes it when its doorbell rings and a GET confirms it ended. The execution waits on `token`, so what
   * this returns is not used.
   */
  async function sendAndWait(event: StepEvent, task: WorkflowTask, token: string, client: WebrunClient, credentials: Awaited<ReturnType<typeof resolveSiteCredentials>>): Promise<LoopState> {
    const { waiting, receiverUrl } = doorbell();
    const { run, loop, executionArn } = event;
    const auth = unguessable();
    const record: WaitingTask = {
      key: waitingKey(executionArn, loop.index),
      nonce: unguessable(),
      authDigest: digest(auth),
      token,
      executionArn,
      sessionId: run.sessionId,
      index: loop.index,
      sentAt: now(),
      loop,
      ...(task.secrets ? { secretRefs: task.secrets } : {}),
      ...(ready(run, loop.index + 1, []).waitSeconds !== undefined ? { nextWaitSeconds: ready(run, loop.index + 1, []).waitSeconds } : {}),
      // What the receiver needs of the run to answer a question or check the budget when the doorbell rings.
      run: {
        guardrails: run.guardrails,
        maxCostUsd: run.maxCostUsd,
        taskGuardrails: task.guardrails,
        earlierTasks: run.tasks.slice(0, loop.index).map((t) => ({ ...(t.guardrails ? { guardrails: t.guardrails } : {}), ...(t.secrets ? { secrets: t.secrets } : {}) })),
      },
      expiresAt: Math.floor(now() / 1000) + (loop.waitSeconds ?? DOORBELL_GRACE_SECONDS) + 3_600,
    };
    // Stored before the task is sent: its doorbell may ring before send-message answers.
    await waiting.put(record);
    let outcome: TaskOutcome;
    try {
      const url = `${receiverUrl.replace(/\/+$/, '')}/${record.key}/${record.nonce}`;
      outcome = await client.sendTask(run.sessionId, task, credentials, { name: WEBHOOK_NAME, url, auth, submittedData: 'just_ping' }, run);
    } catch (err) {
      await waiting.claim(record.key, record.nonce).catch(() => undefined);
      throw err;
    }
    // The task is sent: from here on nothing may fail this step, whose retry would send it a second time. What
    // cannot be done now is left to the task's doorbell, or to the polling fallback once the wait runs out.
    try {
      record.taskId = outcome.taskId;
      // Stored for the doorbell and the fallback, whatever the task did: it may go on after a rule answers its
      // question, or need polling for a result the store refused.
      if (outcome.taskId) await waiting.setTaskId(record.key, record.nonce, outcome.taskId);
      if (outcome.kind === 'pending') {
        log.info('task pending, waiting for its doorbell', { sessionId: run.sessionId, taskIndex: loop.index, taskId: outcome.taskId });
        // A doorbell that rang before the id was stored could not be checked: look once, now that it is.
        outcome = await answerOf(client, record, task.secrets);
      }
      await advance(record, outcome, run, client);
    } catch (err) {
      log.warn('could not follow the task it sent; its doorbell or the polling fallback will', { sessionId: run.sessionId, taskIndex: loop.index, taskId: record.taskId, error: (err as Error)?.name });
    }
    return loop;
  }

  /** The task's state by GET, its final answer redacted of the credentials it may repeat. */
  async function answerOf(client: WebrunClient, record: Pick<WaitingTask, 'sessionId' | 'taskId'>, refs: readonly SiteCredentialRef[] | undefined): Promise<TaskOutcome> {
    const outcome = await client.getTask(record.sessionId, record.taskId as string);
    if (outcome.kind === 'pending' || !refs || refs.length === 0) return outcome;
    const credentials = await resolveSiteCredentials(refs, siteCredentials);
    return redactOutcome(outcome, credentials.flatMap((c) => Object.values(c.fields)));
  }

  /**
   * Follows one answer about a task that waits for its doorbell: a task still running (perhaps after a rule answered
   * its question) keeps waiting; an ended one, or a question for a person, resumes the execution with the new loop,
   * and a failure (TaskFailed, GuardrailTriggered, BudgetExceeded, ...) resumes it with that error. Claiming the
   * record first makes a resume happen once, whoever calls it (send, receiver, fallback) and however often.
   */
  async function advance(record: WaitingTask, outcome: TaskOutcome, run: RunState | undefined, client: WebrunClient): Promise<'waiting' | 'deferred' | 'resumed' | 'already-resumed'> {
    const { waiting, taskTokens } = doorbell();
    // The receiver has no run: the record carries what following the task needs of it.
    const event: StepEvent = {
      executionArn: record.executionArn,
      // Its tasks are the earlier ones, as far as secrets go (this one's guardrails come as taskGuardrails).
      run: run ?? { sessionId: record.sessionId, tasks: (record.run?.earlierTasks ?? []).map((t) => ({ taskDetails: '', maxDuration: LIMITS.maxDurationMs, ...t })), taskCount: record.index + 1, guardrails: record.run?.guardrails, maxCostUsd: record.run?.maxCostUsd },
      loop: record.loop,
    };
    const taskId = record.taskId ?? '';
    let next: LoopState | undefined;
    let failure: Error | undefined;
    try {
      const answeredBefore = record.answered ?? [];
      const claimAnswer = (answered: readonly AnsweredGuardrail[]) => waiting.setAnswered(record.key, record.nonce, [...answered], answeredBefore.length);
      const followed = await follow({ event, taskId, sentAt: record.sentAt, answered: answeredBefore, taskGuardrails: record.run?.taskGuardrails, claimAnswer }, outcome, client);
      if (followed.kind === 'pending') return 'waiting';
      if (followed.kind === 'question') {
        const pending: PendingTask = { taskId, attempt: 0, maxAttempts: pollCap(event.run, LIMITS.maxDurationMs), sentAt: record.sentAt, answered: followed.answered };
        next = { ...record.loop, status: 'question', pending, question: followed.question };
      } else {
        next = followed.loop;
        if (!run && record.nextWaitSeconds !== undefined) next.waitSeconds = record.nextWaitSeconds;
      }
    } catch (err) {
      // A result that could not be stored: the record stays, so the wait runs out and polling takes the task over
      // (and retries storing it), rather than resuming the execution with a failure that loses the result.
      if (err instanceof ResultStoreError) {
        log.warn('could not store the result of a task: leaving it to the polling fallback', { sessionId: record.sessionId, taskIndex: record.index, taskId });
        return 'deferred';
      }
      if ((err as Error)?.name === WebrunErrors.BudgetExceeded) await client.stopTask(record.sessionId).catch(() => undefined);
      failure = err as Error;
    }
    const claimed = await waiting.claim(record.key, record.nonce);
    if (!claimed) return 'already-resumed';
    let resumed: boolean;
    try {
      resumed = next
        ? await taskTokens.succeed(claimed.token, next)
        : await taskTokens.fail(claimed.token, failure!.name, JSON.stringify({ errorType: failure!.name, errorMessage: failure!.message }));
    } catch (err) {
      // Throttled, or any other refusal: the record goes back, so a later doorbell or the fallback still finds the task.
      await waiting.restore(claimed).catch(() => undefined);
      throw err;
    }
    if (!resumed) {
      // The wait had already run out: the polling fallback follows the task, and needs its record back to find it.
      await waiting.restore(claimed);
      log.info('the task\'s wait had run out: left to the polling fallback', { sessionId: record.sessionId, taskIndex: record.index, taskId });
      return 'already-resumed';
    }
    return 'resumed';
  }

  /**
   * The doorbell receiver. A POST is only a hint: it must name a waiting record by key and nonce and present the
   * record's auth; then the task's state is read with the API key, and only a task that has ended resumes the
   * execution, once. Nothing in the answer tells a caller more than whether its ring was taken.
   */
  async function receiveDoorbell(request: DoorbellRequest, ctx: InvocationContext = {}): Promise<DoorbellAnswer> {
    const { waiting } = doorbell();
    const ignored = (status: number, outcome: DoorbellAnswer['body']['outcome']): DoorbellAnswer => {
      metrics.add(M.doorbellsIgnored, 1);
      log.info('doorbell ignored', { outcome });
      return { status, body: { outcome } };
    };
    if (request.method.toUpperCase() !== 'POST') return ignored(405, 'refused');
    const m = /\/([0-9a-f]{40})\/([A-Za-z0-9_-]{43})\/?$/.exec(request.path);
    if (!m) return ignored(404, 'unknown');
    const [, key, nonce] = m;
    const record = await waiting.get(key);
    if (!record || !sameSecret(record.nonce, nonce)) return ignored(404, 'unknown');
    const header = Object.entries(request.headers).find(([name]) => name.toLowerCase() === 'authorization')?.[1] ?? '';
    const presented = header.replace(/^Bearer\s+/i, '').trim();
    if (presented === '' || !sameSecret(digest(presented), record.authDigest)) return ignored(401, 'unauthorized');
    // Rang before send-message answered: the send step looks itself once it knows the task id.
    if (!record.taskId) return ignored(202, 'not-yet-known');
    const client = await clientFor(ctx);
    const outcome = await answerOf(client, record, record.secretRefs);
    if (outcome.kind === 'pending') return ignored(202, 'not-ended');
    const result = await advance(record, outcome, undefined, client);
    if (result === 'already-resumed') return ignored(200, 'already-resumed');
    // Ended, but its result could not be stored: nothing resumes, and the polling fallback takes the task over.
    if (result === 'deferred') return ignored(202, 'not-stored');
    // A question a rule answered: the task goes on, and its end will ring again.
    if (result === 'waiting') return { status: 200, body: { outcome: 'answered' } };
    metrics.add(M.doorbellsAnswered, 1);
    log.info('doorbell answered: task ended', { sessionId: record.sessionId, taskIndex: record.index, taskId: record.taskId, kind: outcome.kind });
    return { status: 200, body: { outcome: 'resumed' } };
  }

  /**
   * Polls a pending task, holding for up to `holdSeconds` but never past the invocation's remaining time; gives up
   * with PollTimeout after `maxAttempts` invocations. As the fallback of completion by webhook, it first takes the
   * task over from its waiting record.
   */
  async function pollTask(raw: unknown, ctx: InvocationContext = {}): Promise<LoopState> {
    const event = parseStepEvent(raw, 'pollTask');
    const client = await clientFor(ctx);
    if ((raw as { fallback?: unknown }).fallback === true) event.loop = await takeOver(event);
    const answer = (raw as { answer?: PersonsAnswer }).answer;
    if (answer !== undefined) event.loop = await answerQuestion(event, answer, client);
    const { run, loop } = event;
    const pending = loop.pending;
    if (loop.status !== 'pending' || !pending) throw new InvalidInput('pollTask event.loop', 'has no pending task');
    const attempt = pending.attempt + 1;
    // The task (as the state machine validated it) tells whether its answer may carry credentials to redact.
    const refs = run.tasks[loop.index]?.secrets ?? [];
    const deadlineAt = deadlineOf(ctx);
    const gets = getsPerPoll(pollPlan);
    const everyMs = pollPlan.everySeconds * 1000;
    let answered = pending.answered ?? [];
    metrics.add(M.pollAttempts, 1);
    for (let i = 0; i < gets; i++) {
      if (i > 0) {
        // Hold only while another pause and GET fit in what is left of this invocation.
        if (deadlineAt !== undefined && now() + everyMs + GET_BUDGET_MS > deadlineAt) break;
        await deps.sleep(everyMs, ctx.signal);
      }
      let followed: Followed;
      try {
        let outcome = await client.getTask(run.sessionId, pending.taskId);
        if (outcome.kind !== 'pending' && refs.length > 0) {
          // The final answer may repeat what the agent typed: read the task's credentials again to redact them.
          // If they cannot be read, the run fails (ConfigError) rather than put them into the result or cause.
          const credentials = await resolveSiteCredentials(refs, siteCredentials);
          outcome = redactOutcome(outcome, credentials.flatMap((c) => Object.values(c.fields)));
        }
        followed = await follow({ event, taskId: pending.taskId, sentAt: pending.sentAt, answered }, outcome, client);
      } catch (err) {
        // This step sent an answer (a person's, or a rule's earlier in this invocation), so it must not fail now (the
        // run would end with the task going on) nor be repeated (its retry, with this step's input, would send the
        // answer again and forget it was sent: maxAnswers and the listed questions would be wrong): a GET that failed
        // for now, or a result that could not be stored, is left to the poll loop, which reads the task again. So is
        // an AWS call that failed (the secrets to redact the answer of could not be read): the next poll reads them.
        const sentHere = answer !== undefined || answered.length > (pending.answered?.length ?? 0);
        const forNow = err instanceof ResultStoreError || TRANSIENT.has((err as Error)?.name);
        if ((sentHere && forNow) || awsCallFailed(err)) {
          log.warn('could not follow the task for now: polling it again', { sessionId: run.sessionId, taskIndex: loop.index, taskId: pending.taskId, error: (err as Error)?.name });
          return { ...loop, pending: { ...pending, attempt, ...(answered.length ? { answered } : {}) } };
        }
        return stopOverBudget(err, client, run.sessionId);
      }
      if (followed.kind === 'done') return followed.loop;
      if (followed.kind === 'question') return { ...loop, status: 'question', pending: { ...pending, attempt, answered: followed.answered }, question: followed.question };
      answered = followed.answered;
    }
    const still = { ...pending, attempt, ...(answered.length ? { answered } : {}) };
    if (attempt >= pending.maxAttempts) {
      log.warn('task poll cap reached', { sessionId: run.sessionId, taskIndex: loop.index, taskId: pending.taskId, attempt });
      metrics.add(M.tasksFailed, 1);
      throw new PollTimeout(`Task ${loop.index + 1} was still pending after ${attempt} polls; the workflow gave up on it.`);
    }
    log.info('task pending', { sessionId: run.sessionId, taskIndex: loop.index, taskId: pending.taskId, attempt });
    return { ...loop, pending: still };
  }

  /** Sends a person's answer to the question the task stopped at; the task goes on and is followed by polling. */
  async function answerQuestion(event: StepEvent, answer: PersonsAnswer, client: WebrunClient): Promise<LoopState> {
    const { loop, run } = event;
    if (loop.status !== 'question' || !loop.pending || !loop.question) throw new InvalidInput('pollTask event.loop', 'has no question waiting for an answer');
    if (typeof answer?.answer !== 'string' || answer.answer.trim() === '') throw new InvalidInput('pollTask event.answer.answer', 'must be a non-empty string');
    await client.answerGuardrail(run.sessionId, loop.pending.taskId, answer.answer);
    const answered = [...(loop.pending.answered ?? []), { question: recorded(loop.question.text), answeredBy: 'person' as const }];
    metrics.add(M.guardrailsAnswered, 1);
    log.info('guardrail answered by a person', { sessionId: run.sessionId, taskIndex: loop.index, taskId: loop.pending.taskId });
    const { question: _asked, ...rest } = loop;
    return { ...rest, status: 'pending', pending: { ...loop.pending, answered } };
  }

  /**
   * Fall back to polling: the task's doorbell never rang in time. Its waiting record is retired (a late doorbell then
   * resumes nothing) and the task is polled from here, with a poll cap covering the grace it has left. Retired, not
   * deleted: should this step fail for now (a GET refused, a result the store refused), Step Functions retries it
   * with the same input, and the retry needs the task id that only the record holds.
   */
  async function takeOver(event: StepEvent): Promise<LoopState> {
    const { waiting } = doorbell();
    const key = waitingKey(event.executionArn, event.loop.index);
    const record = await waiting.get(key);
    if (record) await waiting.retire(key, record.nonce);
    if (!record?.taskId) throw new ApiError(`Task ${event.loop.index + 1} was sent, but its id was never recorded and its doorbell never rang: it cannot be followed.`);
    metrics.add(M.webhookFallbacks, 1);
    log.warn('no doorbell in time: polling the task', { sessionId: event.run.sessionId, taskIndex: event.loop.index, taskId: record.taskId });
    // The questions rules answered meanwhile stay with the task: listed in its result, which is redacted of the
    // answers from secrets, and counted against maxAnswers.
    const answered = record.answered?.length ? { answered: record.answered } : {};
    return { ...event.loop, status: 'pending', pending: { taskId: record.taskId, attempt: 0, maxAttempts: pollCap(event.run, 0), sentAt: record.sentAt, ...answered } };
  }

  /** Ends a session and marks its record; false when the API said it was already gone. */
  async function endSession(client: WebrunClient, executionArn: string, sessionId: string): Promise<boolean> {
    const { terminated } = await client.terminateSession(sessionId);
    if (terminated) metrics.add(M.sessionsTerminated, 1);
    log.info(terminated ? 'session terminated' : 'session was already ended', { sessionId });
    await deps.sessions.ended(executionArn, sessionId).catch((err: unknown) => {
      // The session is ended; only the record lags, and the cleanup's terminate of an ended session is harmless.
      log.warn('could not mark the session record ended', { sessionId, error: (err as Error)?.name });
    });
    return terminated;
  }

  /** Success path: ends the session and returns the execution's output, with the run's usage. Errors go to the failure path. */
  async function finishRun(event: StepEvent, ctx: InvocationContext): Promise<WorkflowOutput> {
    // The last task may have crossed the budget as it completed, where no later step looks: the run fails as at any
    // other crossing (the failure path ends the session and keeps every result).
    checkBudget(event, undefined);
    await endSession(await clientFor(ctx), event.executionArn, event.run.sessionId);
    const output: WorkflowOutput = { sessionId: event.run.sessionId, tasks: event.loop.results };
    const usage = totalUsage(event.loop.results);
    if (usage) output.usage = usage;
    return output;
  }

  /**
   * Ask a person (`guardrails.ask`): tells them the question (with the session's live view, which only the
   * notification carries), then the execution waits on `token` for the answer, a stop, or the timeout.
   */
  async function askPerson(raw: unknown): Promise<LoopState> {
    const event = parseStepEvent(raw, 'askPerson');
    const token = (raw as { token?: unknown }).token;
    if (typeof token !== 'string' || token === '') throw new InvalidInput('askPerson event.token', 'must be a task token');
    const { loop, executionArn } = event;
    if (loop.status !== 'question' || !loop.question) throw new InvalidInput('askPerson event.loop', 'has no question');
    if (!deps.questions) throw new ConfigError('A guardrail question must go to a person, but no way to ask one is configured here.');
    const record = await deps.sessions.get(executionArn).catch(() => undefined);
    await deps.questions.notify({
      executionArn,
      taskIndex: loop.index,
      question: loop.question.text,
      deadline: new Date(now() + loop.question.timeoutSeconds * 1000).toISOString(),
      ...(record?.liveViewUrl ? { liveViewUrl: record.liveViewUrl } : {}),
      token,
    });
    log.info('asked a person', { sessionId: event.run.sessionId, taskIndex: loop.index, timeoutSeconds: loop.question.timeoutSeconds });
    return loop;
  }

  /**
   * Failure path: tries to end the session (a few times, within the invocation's time), then reports the failure
   * whatever that gave: the original error and a cause with every completed result and whether the session's
   * end was confirmed. It throws only when it cannot report at all.
   */
  async function reportFailure(event: FailureEvent, ctx: InvocationContext): Promise<FailureReport> {
    let sessionId = event.run?.sessionId ?? null;
    let sessionEnded: boolean | null = null;
    let cleanupError: string | undefined;
    if (!sessionId) {
      // A start that failed after its session existed (a balance under minBalanceUsd, an answer lost after the
      // record was written) has no run in the state: the session's record names it, and whether it was ended.
      const record = await deps.sessions.get(event.executionArn).catch((err: unknown) => {
        log.warn('could not read the session record of a failed start', { error: (err as Error)?.name });
        return undefined;
      });
      if (record) {
        sessionId = record.sessionId;
        if (record.endedAt !== undefined) sessionEnded = true;
      }
    }
    if (sessionId && sessionEnded === null) {
      sessionEnded = false;
      const deadlineAt = deadlineOf(ctx);
      for (let attempt = 1; ; attempt++) {
        try {
          await endSession(await clientFor(ctx), event.executionArn, sessionId);
          sessionEnded = true;
          cleanupError = undefined;
          break;
        } catch (err) {
          cleanupError = isWebrunError(err) ? err.name : ((err as Error)?.name ?? 'Error');
          const pauseMs = 1000 * 2 ** (attempt - 1);
          const fits = deadlineAt === undefined || now() + pauseMs + GET_BUDGET_MS < deadlineAt;
          if (!TRANSIENT.has(cleanupError) || attempt >= FAILURE_TERMINATE_ATTEMPTS || !fits) {
            log.error('could not terminate the session after a failure; it may still be open', { sessionId, error: cleanupError, attempts: attempt });
            break;
          }
          await deps.sleep(pauseMs);
        }
      }
    }
    return failureReport(event, { sessionId, sessionEnded, cleanupError }, deps.results);
  }

  /** The terminate Lambda: ends the session; on the failure path (`failure` present) also reports the failure. */
  async function terminateSession(raw: unknown, ctx: InvocationContext = {}): Promise<WorkflowOutput | FailureReport> {
    const event = object(raw, 'terminateSession event');
    if (event.failure !== undefined) {
      return reportFailure({
        executionArn: typeof event.executionArn === 'string' ? event.executionArn : 'unknown-execution',
        run: event.run === undefined ? undefined : parseStepEvent(event, 'terminateSession').run,
        loop: event.loop as LoopState | undefined,
        failure: object(event.failure, 'terminateSession event.failure'),
      }, ctx);
    }
    return finishRun(parseStepEvent(event, 'terminateSession'), ctx);
  }

  /**
   * The secret values the session's agent was given up to the task at `loop.index`: the tasks' site credentials and
   * the answers from secrets any rule of the run could send (TOTP codes aside). An API error text may quote what the
   * API was sent, so a step's error is redacted of them (read only when a step fails).
   */
  async function secretsOfRun(event: StepEvent): Promise<string[]> {
    const tasks = (event.run.tasks as Array<WorkflowTask | undefined>).slice(0, event.loop.index + 1);
    const refs = tasks.flatMap((t) => t?.secrets ?? []);
    const values = (await resolveSiteCredentials(refs, siteCredentials)).flatMap((c) => Object.values(c.fields));
    values.push(...(await ruleSecretValues([event.run.guardrails, ...tasks.map((t) => t?.guardrails)].flatMap((g) => g?.rules ?? []), false)));
    return values;
  }

  /**
   * A step's error, redacted of the run's secrets before it leaves the step: its message and stack go to the logs,
   * X-Ray and the execution history, and into the failure's cause. When the secrets cannot be read, the message is
   * withheld rather than let a value through.
   */
  async function withoutSecrets(err: unknown, raw: unknown): Promise<unknown> {
    // Ours, naming fields and secret references, never values: kept whole (a missing secret must say which).
    if (!(err instanceof Error) || err instanceof ConfigError || err instanceof InvalidInput) return err;
    let event: StepEvent;
    try {
      event = parseStepEvent(raw, 'step');
    } catch {
      return err; // an event the step refused: nothing was sent yet
    }
    const tasks = event.run.tasks.slice(0, event.loop.index + 1);
    const mayHold = tasks.some((t) => t.secrets?.length) || [event.run.guardrails, ...tasks.map((t) => t.guardrails)].some((g) => g?.rules?.some((r) => r.answerFromSecret && !r.answerFromSecret.totp));
    if (!mayHold) return err;
    try {
      const values = await secretsOfRun(event);
      err.message = redactText(err.message, values);
      if (err.stack) err.stack = redactText(err.stack, values);
    } catch {
      err.message = 'The step failed; its message was withheld, since the secrets it may repeat could not be read.';
      err.stack = `${err.name}: ${err.message}`;
    }
    return err;
  }

  /** A step whose error leaves it redacted of the run's secrets (withoutSecrets). */
  function redacting<A extends unknown[], T>(step: (raw: unknown, ...rest: A) => Promise<T>): (raw: unknown, ...rest: A) => Promise<T> {
    return async (raw, ...rest) => {
      try {
        return await step(raw, ...rest);
      } catch (err) {
        throw await withoutSecrets(err, raw);
      }
    };
  }

  // The steps that call the API once the agent may have been given secrets. The start has given it none; the ask
  // sends a question already redacted; the receiver's failures resume the execution through follow(), redacted there.
  return { startSession, sendTask: redacting(sendTask), pollTask: redacting(pollTask), terminateSession: redacting(terminateSession), receiveDoorbell, askPerson };
}

/** Tokens and cost summed over completed tasks; undefined when none reported usage. */
export function totalUsage(results: readonly TaskResult[]): WorkflowOutput['usage'] {
  const withUsage = results.filter((r) => r.usage);
  if (withUsage.length === 0) return undefined;
  const sum = (key: 'inputTokens' | 'outputTokens' | 'cost') => withUsage.reduce((total, r) => total + (typeof r.usage?.[key] === 'number' ? r.usage[key] : 0), 0);
  return { inputTokens: sum('inputTokens'), outputTokens: sum('outputTokens'), cost: Math.round(sum('cost') * 1e6) / 1e6 };
}

/**
 * The loop with the task at `index` next: completion by webhook waits for its doorbell for its maxDuration plus
 * a grace (the Send state's TimeoutSecondsPath).
 */
/**
 * The most of a question kept in a task's `guardrails` list: up to 20 tasks of 20 answers each stay far inside the
 * state's 256 KiB (the full question is in the run's progress and the question event).
 */
export const MAX_RECORDED_QUESTION_CHARS = 200;

function recorded(question: string): string {
  return clipped(question, MAX_RECORDED_QUESTION_CHARS);
}

function ready(run: RunState, index: number, results: TaskResult[]): LoopState {
  const next = run.tasks[index] as WorkflowTask | undefined;
  return next ? { index, status: 'ready', results, waitSeconds: Math.ceil(next.maxDuration / 1000) + DOORBELL_GRACE_SECONDS } : { index, status: 'ready', results };
}

export type WorkflowHandlers = ReturnType<typeof makeHandlers>;
/** The handlers the state machine's Task states invoke (the receiver is called by the API's doorbells). */
export type HandlerName = 'startSession' | 'sendTask' | 'pollTask' | 'terminateSession' | 'askPerson';

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

/**
 * The report the execution fails with. The run's inline results are bounded (lambdas/shared/result-store.ts) so
 * that the cause fits Step Functions' limit with every result in it; should it not (a very long message), the
 * largest inline results are moved to the result store, then the message is shortened.
 */
export async function failureReport(
  event: FailureEvent,
  cleanup: { sessionId: string | null; sessionEnded: boolean | null; cleanupError?: string },
  store: ResultStore,
): Promise<FailureReport> {
  const error = event.failure.Error || WebrunErrors.ApiError;
  const body: FailureCause = {
    message: causeMessage(event.failure.Cause),
    sessionId: cleanup.sessionId,
    // Past the last task (the budget checked at the end), no task was running.
    taskIndex: event.loop && !(event.run && event.loop.index >= event.run.taskCount) ? event.loop.index : null,
    completed: Array.isArray(event.loop?.results) ? [...event.loop.results] : [],
    sessionEnded: cleanup.sessionEnded,
  };
  if (cleanup.cleanupError) body.cleanupError = cleanup.cleanupError;
  const size = () => JSON.stringify(body).length;
  if (size() > MAX_CAUSE_CHARS) body.message = `${body.message.slice(0, 2_000)}…`;
  const bySize = body.completed
    .map((r, i) => ({ i, size: r.result === undefined ? 0 : JSON.stringify(r.result).length }))
    .filter((x) => x.size > 0)
    .sort((a, b) => b.size - a.size);
  for (const { i } of bySize) {
    if (size() <= MAX_CAUSE_CHARS) break;
    body.completed[i] = await storeResult(body.completed[i], store, resultKey(event.executionArn, body.completed[i].index));
  }
  // Still too long for a cause: the tasks' lists of answered questions go (the results stay, each by reference).
  if (size() > MAX_CAUSE_CHARS) body.completed = body.completed.map(({ guardrails: _answered, ...result }) => result);
  return { error, cause: JSON.stringify(body) };
}
