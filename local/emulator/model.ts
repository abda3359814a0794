/**
 * Sessions and tasks: what exists, what state it is in, what it costs, and how it moves on (polls, time, guardrail
 * answers, stops, terminate, idle expiry). No HTTP here: the API handlers call in, and a task sent with a webhook
 * tells `ModelEvents` when it stops on its own, so its doorbell can ring.
 */
import { validateDoorbellScript } from './doorbell';
import type {
  DoorbellScript,
  DoorbellType,
  GuardrailAnswer,
  Ledger,
  ResponseShape,
  ScriptedBehaviour,
  SessionRecord,
  TaskBehaviour,
  TaskOutcome,
  TaskRecord,
} from './types';
import { isObject, newId, nonNegInt, nonNegNumber, onlyFields, timerMs, roundUsd, tokenEstimate, type Json, type Timers } from './util';

const DEFAULT_QUESTION = 'I need login credentials';
const DEFAULT_REASON = 'Navigation failed: page did not load';
/** A task's `maxDuration` when it sets none, and the most it may set (API-NOTES: "A task runs at most 5 minutes"). */
export const MAX_TASK_MS = 300_000;
const OUTCOMES: readonly TaskOutcome[] = ['completed', 'guardrail', 'failed', 'stuck'];
export const SHAPES: readonly ResponseShape[] = ['documented', 'status'];
/** The largest `resultBytes` a behaviour may ask for. */
const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/** Every field a task behaviour may have: a misspelt one ("quesion") is refused, not silently ignored. */
const BEHAVIOUR_FIELDS: ReadonlyArray<keyof TaskBehaviour> = ['outcome', 'pendingPolls', 'pendingMs', 'inline', 'question', 'questions', 'reason', 'data', 'shape', 'cost', 'costPerSecond', 'resultBytes', 'doorbell'];

export function validateTaskBehaviour(b: unknown): ScriptedBehaviour {
  if (!isObject(b)) throw new TypeError('a task behaviour must be an object');
  onlyFields(b, BEHAVIOUR_FIELDS, 'a task behaviour');
  if (b.inline !== undefined && typeof b.inline !== 'boolean') throw new TypeError('inline must be a boolean');
  // An unscripted task completes; so does a behaviour that scripts everything but its outcome.
  const outcome = b.outcome ?? 'completed';
  if (!OUTCOMES.includes(outcome as TaskOutcome)) throw new TypeError(`outcome must be one of ${OUTCOMES.join(', ')}`);
  // What only one outcome uses, with another (or the default) the script would pass without doing it.
  if (b.question !== undefined && outcome !== 'guardrail') throw new TypeError(`question is the question of outcome "guardrail" (got outcome "${String(outcome)}"); for questions before any outcome use questions`);
  if (b.reason !== undefined && outcome !== 'failed') throw new TypeError(`reason is the reason of outcome "failed" (got outcome "${String(outcome)}")`);
  nonNegInt(b.pendingPolls, 'pendingPolls');
  timerMs(b.pendingMs, 'pendingMs');
  if (b.shape !== undefined && !SHAPES.includes(b.shape as ResponseShape)) throw new TypeError('shape must be documented or status');
  if (b.data !== undefined && !isObject(b.data)) throw new TypeError('data must be an object (the documented shape of a completed task\'s data)');
  for (const k of ['question', 'reason'] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'string') throw new TypeError(`${k} must be a string`);
  }
  if (b.questions !== undefined) {
    if (!Array.isArray(b.questions) || !b.questions.every((q) => typeof q === 'string' && q !== '')) {
      throw new TypeError('questions must be an array of non-empty strings');
    }
    if (b.question !== undefined) throw new TypeError('give question or questions, not both');
    if (outcome === 'guardrail' && b.questions.length === 0) throw new TypeError('outcome guardrail needs at least one question');
  }
  nonNegNumber(b.cost, 'cost');
  nonNegNumber(b.costPerSecond, 'costPerSecond');
  const bytes = nonNegInt(b.resultBytes, 'resultBytes');
  if (bytes !== undefined && bytes > MAX_RESULT_BYTES) throw new TypeError(`resultBytes must be at most ${MAX_RESULT_BYTES}`);
  if (b.doorbell !== undefined) validateDoorbellScript(b.doorbell, 'doorbell');
  return { ...structuredClone(b), outcome } as unknown as ScriptedBehaviour;
}

const REDACTED = '[redacted]';

/** A value nobody reading the ledger should see; an empty one stays empty, as nothing was sent. */
function redact(value: unknown): string {
  return value === '' ? '' : REDACTED;
}

/**
 * The ledger is served without auth (`GET /__emulator/ledger`, also the built-in emulator of a local run), so the
 * values of `secrets[].fields` (at the top level or in `initialTask`) and the guardrail answers (a rule's
 * `answerFromSecret`, a PIN a person typed) are redacted; the field names stay, so a test still sees what was sent.
 */
function redactSession(s: SessionRecord): void {
  for (const body of [s.startBody, ...s.tasks.map((t) => t.body)]) {
    if (!isObject(body)) continue;
    for (const holder of [body, body.initialTask]) {
      if (!isObject(holder) || !Array.isArray(holder.secrets)) continue;
      for (const item of holder.secrets) {
        if (!isObject(item) || !isObject(item.fields)) continue;
        for (const name of Object.keys(item.fields)) item.fields[name] = redact(item.fields[name]);
      }
    }
  }
  for (const t of s.tasks) for (const a of t.answers) a.answer = redact(a.answer);
}

/** Where a task sent with `webhook` rings. `auth` lives here only, never in a record. */
export interface Webhook {
  url: string;
  auth?: string;
}

export interface ModelConfig {
  pendingPolls: number;
  shape: ResponseShape;
  idleMs: number;
  maxSessions?: number;
  taskCost?: number;
  costPerSecond?: number;
  webhookPendingMs: number;
  doorbell?: DoorbellScript;
}

export interface ModelEvents {
  /** A task with a webhook was sent. */
  taskSent(task: Task): void;
  /** A task with a webhook stopped on its own: completed, failed, or at a guardrail question. */
  taskEnded(task: Task, type: DoorbellType): void;
}

export class Session {
  readonly tasks = new Map<string, Task>();

  constructor(readonly rec: SessionRecord) {}

  get id(): string {
    return this.rec.sessionId;
  }

  isOpen(): boolean {
    return this.rec.terminatedAt === undefined && this.rec.expiredAt === undefined;
  }

  /** The task still pending, if any (one waiting for a guardrail answer does not block a new task). */
  pending(): Task | undefined {
    for (const t of this.tasks.values()) if (t.rec.status === 'pending') return t;
    return undefined;
  }
}

export class Task {
  readonly rec: TaskRecord;
  readonly shape: ResponseShape;
  readonly questions: readonly string[];
  readonly pendingPolls: number;
  /** How long each pending stretch lasts (from the send, then from each `resume`). */
  readonly stretchMs: number;
  readonly doorbell: DoorbellScript;
  readonly costScripted: boolean;
  /** Questions asked so far (the current one is `questions[asked - 1]`). */
  asked = 0;
  pendingAnswered = 0;
  stretchStart: number;
  /** Bumped on each new pending stretch, so a stale timer does nothing. */
  stretchNo = 0;
  reason?: string;
  /** `maxDuration` (ms): the real API fails a task still running (or waiting at a question) this long after its send. */
  readonly maxDurationMs: number;
  private readonly finalOutcome: Exclude<TaskOutcome, 'guardrail'>;
  private runningMs = 0;
  private frozenProgress = 0;

  constructor(
    readonly session: Session,
    taskDetails: string,
    body: unknown,
    /** The message (or run-task body) as received: outputType and outputSchema shape the result. */
    readonly message: Json,
    readonly behaviour: ScriptedBehaviour,
    readonly webhook: Webhook | undefined,
    private readonly cfg: ModelConfig,
    now: number,
  ) {
    let taskId = newId();
    while (session.tasks.has(taskId)) taskId = newId();
    this.rec = { taskId, taskDetails, body, outcome: behaviour.outcome, polls: 0, sentAt: now, status: 'pending', answers: [], cost: 0 };
    this.shape = behaviour.shape ?? cfg.shape;
    this.questions = behaviour.questions ?? (behaviour.outcome === 'guardrail' ? [behaviour.question ?? DEFAULT_QUESTION] : []);
    this.finalOutcome = behaviour.outcome === 'guardrail' ? 'completed' : behaviour.outcome;
    // A webhook task ends by time alone: nobody needs to poll it for its doorbell to ring.
    this.pendingPolls = webhook ? 0 : (behaviour.pendingPolls ?? (behaviour.pendingMs !== undefined ? 0 : cfg.pendingPolls));
    this.stretchMs = behaviour.pendingMs ?? (webhook ? cfg.webhookPendingMs : 0);
    this.stretchStart = now;
    this.maxDurationMs = typeof message.maxDuration === 'number' ? message.maxDuration : MAX_TASK_MS;
    this.doorbell = behaviour.doorbell ?? cfg.doorbell ?? {};
    this.costScripted = [behaviour.cost, behaviour.costPerSecond, cfg.taskCost, cfg.costPerSecond].some((v) => v !== undefined);
  }

  get id(): string {
    return this.rec.taskId;
  }

  get sessionId(): string {
    return this.session.id;
  }

  /** The question it stopped at last. */
  get question(): string {
    return this.questions[Math.max(0, this.asked - 1)] ?? DEFAULT_QUESTION;
  }

  /** When the task times out if it has not ended by then. */
  get deadline(): number {
    return this.rec.sentAt + this.maxDurationMs;
  }

  get readyAt(): number {
    return this.stretchStart + this.stretchMs;
  }

  /** What ends the current pending stretch. */
  nextStop(): 'guardrail' | Exclude<TaskOutcome, 'guardrail'> {
    return this.asked < this.questions.length ? 'guardrail' : this.finalOutcome;
  }

  isReady(now: number): boolean {
    return this.nextStop() !== 'stuck' && this.pendingAnswered >= this.pendingPolls && now >= this.readyAt;
  }

  /** 0..1: how far the task is toward its end (each question ends one of `questions.length + 1` stretches). */
  progress(now: number): number {
    if (this.rec.status !== 'pending') return this.frozenProgress;
    let fraction: number;
    if (this.nextStop() === 'stuck') {
      fraction = this.pendingAnswered / (this.pendingAnswered + 1);
    } else {
      const parts: number[] = [];
      if (this.pendingPolls > 0) parts.push(this.pendingAnswered / (this.pendingPolls + 1));
      if (this.stretchMs > 0) parts.push(Math.min(1, (now - this.stretchStart) / this.stretchMs));
      fraction = parts.length > 0 ? Math.min(...parts) : 0;
    }
    return (this.asked + fraction) / (this.questions.length + 1);
  }

  /** `usage.cost` now: per second pending (`costPerSecond`), else the total cost times progress. */
  cost(now: number): number {
    const b = this.behaviour;
    const rate = b.costPerSecond ?? (b.cost === undefined ? this.cfg.costPerSecond : undefined);
    if (rate !== undefined) {
      const ms = this.runningMs + (this.rec.status === 'pending' ? now - this.stretchStart : 0);
      return roundUsd((rate * ms) / 1000);
    }
    const total = b.cost ?? this.cfg.taskCost ?? tokenEstimate(this.rec.taskDetails).cost;
    return roundUsd(total * this.progress(now));
  }

  usage(now: number): { inputTokens: number; outputTokens: number; cost: number } {
    const full = tokenEstimate(this.rec.taskDetails);
    const p = this.progress(now);
    return { inputTokens: Math.round(full.inputTokens * p), outputTokens: Math.round(full.outputTokens * p), cost: this.cost(now) };
  }

  /** Leaves `pending` for `status`, freezing progress and the running time. */
  settle(status: 'completed' | 'guardrail' | 'failed', progress: number, now: number): void {
    if (this.rec.status === 'pending') this.runningMs += now - this.stretchStart;
    this.frozenProgress = progress;
    this.rec.status = status;
  }

  /** Starts a pending stretch (after a guardrail answer). */
  resume(now: number): void {
    this.rec.status = 'pending';
    this.pendingAnswered = 0;
    this.stretchStart = now;
    this.stretchNo += 1;
  }
}

export class Model {
  private sessions = new Map<string, Session>();
  private order: Session[] = [];
  private queue: ScriptedBehaviour[] = [];
  private maxOpen = 0;

  constructor(
    private readonly cfg: ModelConfig,
    private readonly timers: Timers,
    private readonly events: ModelEvents,
  ) {}

  enqueue(behaviours: readonly unknown[]): number {
    const valid = behaviours.map(validateTaskBehaviour);
    this.queue.push(...valid);
    return this.queue.length;
  }

  // --- sessions ---------------------------------------------------------------------------------------------------

  private expireIfIdle(s: Session, now: number): void {
    if (!s.isOpen()) return;
    // Deadlines passed before the session went idle come first: such a task timed out, it was not ended by expiry.
    this.timeOutTasks(s, Math.min(now, s.rec.lastActivityAt + this.cfg.idleMs));
    if (now - s.rec.lastActivityAt < this.cfg.idleMs) return;
    s.rec.expiredAt = s.rec.lastActivityAt + this.cfg.idleMs;
    this.endTasks(s, s.rec.expiredAt, 'the session expired');
  }

  /** A session that ends ends its running task (or the one waiting at a question): its progress and cost stop there. */
  private endTasks(s: Session, at: number, reason: string): void {
    for (const t of s.tasks.values()) {
      if (t.rec.status !== 'pending' && t.rec.status !== 'guardrail') continue;
      t.reason = reason;
      t.settle('failed', t.progress(at), at);
    }
  }

  /**
   * Fails each task of the session whose `maxDuration` has passed by `now` while it was still running or waiting at
   * a question (TASK_TIMEOUT): a local run must meet the failure the real API gives a task that outlives it. Checked
   * lazily, whenever a request or the ledger looks at the session (webhook tasks also by a timer, for their bell).
   */
  private timeOutTasks(s: Session, now: number): void {
    for (const t of s.tasks.values()) this.timeOutIfDue(t, now);
  }

  private timeOutIfDue(t: Task, now: number): void {
    if (now < t.deadline) return;
    const at = t.deadline;
    // Ready before its deadline but nobody asked since: it stopped then (completed, failed, or at its next question).
    if (t.rec.status === 'pending' && t.isReady(at)) this.stop(t, t.readyAt);
    if (t.rec.status !== 'pending' && t.rec.status !== 'guardrail') return;
    t.reason = `Task timed out after ${t.maxDurationMs} ms (maxDuration)`;
    t.settle('failed', t.progress(at), at);
    this.endIfLast(t);
    if (t.webhook) this.events.taskEnded(t, 'failed');
  }

  sweep(): void {
    const now = Date.now();
    for (const s of this.order) this.expireIfIdle(s, now);
  }

  private openCount(): number {
    return this.order.filter((s) => s.isOpen()).length;
  }

  /** True when `maxSessions` sessions are open (idle ones expired first). */
  atSessionLimit(): boolean {
    if (this.cfg.maxSessions === undefined) return false;
    this.sweep();
    return this.openCount() >= this.cfg.maxSessions;
  }

  createSession(startBody: unknown): Session {
    let sessionId = newId();
    while (this.sessions.has(sessionId)) sessionId = newId();
    const now = Date.now();
    const s = new Session({ sessionId, createdAt: now, lastActivityAt: now, terminateCalls: 0, terminateRequests: 0, startBody, tasks: [] });
    this.sessions.set(sessionId, s);
    this.order.push(s);
    this.sweep();
    this.maxOpen = Math.max(this.maxOpen, this.openCount());
    return s;
  }

  /** Finds a session, expiring it first if idle, and counts the request as activity when it is open. */
  lookup(sessionId: string): Session | undefined {
    const s = this.sessions.get(sessionId);
    if (!s) return undefined;
    const now = Date.now();
    this.expireIfIdle(s, now);
    if (s.isOpen()) s.rec.lastActivityAt = now;
    return s;
  }

  endSession(s: Session, by: 'request' | 'self'): void {
    s.rec.terminatedAt = Date.now();
    s.rec.terminatedBy = by;
    if (by === 'request') s.rec.terminateCalls += 1;
    this.endTasks(s, s.rec.terminatedAt, 'the session was terminated');
  }

  // --- tasks ------------------------------------------------------------------------------------------------------

  /** A newTask: takes the next queued behaviour (default: completed). Inline tasks stop at once. */
  sendTask(s: Session, taskDetails: string, body: unknown, message: Json, webhook: Webhook | undefined): Task {
    return this.addTask(s, taskDetails, body, message, this.queue.shift() ?? { outcome: 'completed' }, webhook);
  }

  /** run-task: a task that completes at once. */
  runTask(s: Session, taskDetails: string, body: unknown, message: Json): Task {
    return this.addTask(s, taskDetails, body, message, { outcome: 'completed', inline: true }, undefined);
  }

  private addTask(s: Session, taskDetails: string, body: unknown, message: Json, behaviour: ScriptedBehaviour, webhook: Webhook | undefined): Task {
    const now = Date.now();
    const t = new Task(s, taskDetails, body, message, behaviour, webhook, this.cfg, now);
    s.tasks.set(t.id, t);
    s.rec.tasks.push(t.rec);
    if (webhook) this.events.taskSent(t);
    if (behaviour.inline && t.nextStop() !== 'stuck') this.stop(t, now);
    else this.scheduleEnd(t);
    // A webhook task's timeout rings its bell (type "failed") whether or not anybody asks about the session.
    if (webhook) this.timers.after(t.deadline - now, () => this.expireIfIdle(t.session, Date.now()));
    return t;
  }

  /** A webhook task ends when its stretch is over, polled or not. */
  private scheduleEnd(t: Task): void {
    if (!t.webhook || t.nextStop() === 'stuck') return;
    const stretch = t.stretchNo;
    const tick = (): void => {
      if (t.stretchNo !== stretch || t.rec.status !== 'pending') return;
      const now = Date.now();
      this.expireIfIdle(t.session, now);
      if (!t.session.isOpen() || t.rec.status !== 'pending') return;
      if (now < t.readyAt) return this.timers.after(t.readyAt - now, tick);
      this.stop(t, now);
    };
    this.timers.after(t.readyAt - Date.now(), tick);
  }

  /** The task's pending stretch ends on its own: at its next question, or with its outcome. */
  private stop(t: Task, now: number): void {
    const next = t.nextStop();
    let type: DoorbellType;
    if (next === 'guardrail') {
      t.asked += 1;
      t.settle('guardrail', t.asked / (t.questions.length + 1), now);
      type = 'guardrail_trigger';
    } else if (next === 'failed') {
      t.reason = t.behaviour.reason ?? DEFAULT_REASON;
      t.settle('failed', 1, now);
      type = 'failed';
    } else {
      t.settle('completed', 1, now);
      type = 'task_completed';
    }
    if (type !== 'guardrail_trigger') this.endIfLast(t);
    if (t.webhook) this.events.taskEnded(t, type);
  }

  private endIfLast(t: Task): void {
    if (t.message.terminateOnCompletion === true && t.session.isOpen()) this.endSession(t.session, 'self');
  }

  /** A GET /task: a pending task that is ready stops; one that is not counts one more pending answer. */
  poll(t: Task): void {
    t.rec.polls += 1;
    const now = Date.now();
    this.timeOutIfDue(t, now);
    if (t.rec.status !== 'pending') return;
    if (t.isReady(now)) this.stop(t, now);
    else t.pendingAnswered += 1;
  }

  /** Stops the task if it is ready now (send-message holding an answer). */
  stopIfReady(t: Task): void {
    const now = Date.now();
    // A session terminated (or expired) while send-message held the answer ended the task: it does not complete.
    this.expireIfIdle(t.session, now);
    if (t.rec.status === 'pending' && t.session.isOpen() && t.isReady(now)) this.stop(t, now);
  }

  /** `state`/`stop`, or a guardrail answered with `stop`: the task fails with "stopped". No doorbell. */
  cancel(t: Task): void {
    const now = Date.now();
    t.reason = 'stopped';
    t.settle('failed', t.progress(now), now);
    this.endIfLast(t);
  }

  answerGuardrail(t: Task, answer: string, newState: GuardrailAnswer['newState']): void {
    t.rec.answers.push({ question: t.question, answer, newState });
    if (newState === 'stop') return this.cancel(t);
    t.resume(Date.now());
    this.scheduleEnd(t);
  }

  // --- ledger -----------------------------------------------------------------------------------------------------

  /** A deep copy of the sessions; site credentials and guardrail answers redacted unless `reveal` (in-process only). */
  snapshot(reveal = false): Omit<Ledger, 'requests' | 'doorbells'> {
    this.sweep();
    const now = Date.now();
    for (const s of this.order) for (const t of s.tasks.values()) t.rec.cost = t.cost(now);
    const sessions = this.order.map((s) => structuredClone(s.rec));
    if (!reveal) for (const s of sessions) redactSession(s);
    return {
      sessions,
      created: sessions.length,
      terminated: sessions.filter((s) => s.terminatedAt !== undefined).length,
      open: sessions.filter((s) => s.terminatedAt === undefined && s.expiredAt === undefined).length,
      expired: sessions.filter((s) => s.expiredAt !== undefined).length,
      maxOpen: this.maxOpen,
    };
  }

  reset(): void {
    this.queue = [];
    this.sessions = new Map();
    this.order = [];
    this.maxOpen = 0;
  }
}
