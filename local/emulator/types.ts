/**
 * The emulator's public types: how tests script it (TaskBehaviour, FaultRule, DoorbellScript), what it records
 * (Ledger and its records) and how it is started and driven (EmulatorOptions, Emulator). docs/EMULATOR.md
 * describes every field.
 */

export type TaskOutcome = 'completed' | 'guardrail' | 'failed' | 'stuck';
export type ResponseShape = 'documented' | 'status';

/** How the doorbells of one task (or, as `EmulatorOptions.doorbell`, of every webhook task) ring. */
export interface DoorbellScript {
  /** Never ring this task's end (the bell is recorded as `dropped`). An `early` bell still rings. */
  drop?: boolean;
  /** Ring this many ms after the task ended (or stopped at a question). @default 0 */
  delayMs?: number;
  /** Ring each end this many times, all at once (at-least-once delivery). @default 1 */
  duplicate?: number;
  /**
   * Also ring once BEFORE the task has ended (`type: "task_completed"`, right URL and auth: a forged bell for an
   * unfinished task). `true`: halfway through the task's first pending stretch; a number: that many ms after the
   * task was sent. The task's own bells still ring (unless `drop`).
   */
  early?: boolean | number;
}

export interface TaskBehaviour {
  /**
   * What the task ends with: `stuck` = pending until its `maxDuration` passes (then failed, timed out);
   * `guardrail` = stop at `question` (or each of `questions`), then complete once every question was answered
   * with `resume`. @default 'completed'
   */
  outcome?: TaskOutcome;
  /**
   * GET /task answers pending this many times before the outcome (and again after each guardrail answer).
   * Ignored for a task sent with a `webhook`: such a task ends by time alone.
   * @default options.pendingPolls (2), or 0 when only `pendingMs` is given
   */
  pendingPolls?: number;
  /**
   * Pending until this many ms after the task was sent, or after a guardrail answer (combined with `pendingPolls`
   * when both are given). @default 0; for a task sent with a `webhook`: options.webhookPendingMs
   */
  pendingMs?: number;
  /** The task's first stop (outcome or first question) comes back in the send-message answer. */
  inline?: boolean;
  /** The guardrail question of `outcome: 'guardrail'`. @default "I need login credentials" */
  question?: string;
  /**
   * Guardrail questions asked in turn, each after a pending stretch, before the outcome (any outcome; with
   * `guardrail` the task completes after the last answer). Not together with `question`.
   */
  questions?: string[];
  /** Failure reason. @default "Navigation failed: page did not load" */
  reason?: string;
  /** Replaces the completed `data` entirely. */
  data?: Record<string, unknown>;
  /** Answer shape for this task. @default options.shape ('documented') */
  shape?: ResponseShape;
  /**
   * The task's total `usage.cost` (USD), reached when it completes; its running cost grows with its progress.
   * @default options.taskCost, else a token-based estimate (a few tenths of a cent)
   */
  cost?: number;
  /** Running cost (USD) per second the task spends pending; wins over `cost`. @default options.costPerSecond */
  costPerSecond?: number;
  /** Pads the completed `data` to this many bytes of JSON (a long `message`), for results of any size. */
  resultBytes?: number;
  /** Doorbells for this task, when it was sent with a `webhook`. @default options.doorbell */
  doorbell?: DoorbellScript;
}

/** A behaviour as the emulator runs it, once checked: its outcome filled in. */
export type ScriptedBehaviour = TaskBehaviour & { outcome: TaskOutcome };

/**
 * Which requests a fault applies to. `send` is every send-message EXCEPT `state`/`terminate`, which is `terminate`;
 * `any` is every API endpoint (never the `/__emulator` control endpoints or `GET /`).
 */
export type Endpoint = 'start' | 'send' | 'terminate' | 'poll' | 'run-task' | 'any';

export interface FaultRule {
  endpoint: Endpoint;
  /** e.g. 429, 500, 503, 401, 402. Defaults from `code` (RATE_LIMIT_EXCEEDED → 429, ...) or 500. */
  status?: number;
  /** Error code in the body; defaults from `status` (429 → RATE_LIMIT_EXCEEDED, 503 → INSTANCE_UNAVAILABLE, ...). */
  code?: string;
  /** Error text in the body; defaults from the code. */
  error?: string;
  /** Sets the Retry-After header. */
  retryAfterSeconds?: number;
  /** Answer this raw text (e.g. '<html>oops') with `status` (default 200). */
  rawBody?: string;
  /** Content-Type of `rawBody`. @default "text/html; charset=utf-8" */
  contentType?: string;
  /** Delay before answering. Alone (no status/code/rawBody/hangup): just latency, then the normal answer. */
  latencyMs?: number;
  /** Destroy the socket without answering (recorded in the ledger with status 0). */
  hangup?: boolean;
  /** How many matching requests it applies to. Infinity allowed (over HTTP: null or "Infinity"). @default 1 */
  times?: number;
  /**
   * Let this many matching requests through first. Every rule counts every request that matches its endpoint,
   * whether or not another rule answered it, so `skip: 1` always means "the 2nd matching request". @default 0
   */
  skip?: number;
}

/** Where a task is now. `guardrail`: stopped at a question, waiting for an answer. */
export type TaskStatus = 'pending' | 'completed' | 'guardrail' | 'failed';

/** A guardrail answer the task received (send-message `actionType: "guardrail"`). */
export interface GuardrailAnswer {
  question: string;
  /** The message's `taskDetails`; `"[redacted]"` in the ledger unless revealed (an empty one stays empty). */
  answer: string;
  newState: 'resume' | 'stop';
}

export interface TaskRecord {
  taskId: string;
  taskDetails: string;
  /**
   * The send-message `message` (or run-task body) as received, `webhook.auth` and the values of `secrets[].fields`
   * redacted (those revealed by `ledger({ reveal: true })`).
   */
  body: unknown;
  /** The behaviour's outcome (what the task was scripted to do). */
  outcome: TaskOutcome;
  /** GET /task requests for this task. */
  polls: number;
  sentAt: number;
  status: TaskStatus;
  /** Guardrail answers received, in order. */
  answers: GuardrailAnswer[];
  /** `usage.cost` now: running while pending, final once ended. */
  cost: number;
}

export interface SessionRecord {
  sessionId: string;
  createdAt: number;
  lastActivityAt: number;
  terminatedAt?: number;
  /** Terminate requests that actually ended an open session ("terminated exactly once" means 1). */
  terminateCalls: number;
  /** All terminate requests naming this session, including repeats and ones after expiry. */
  terminateRequests: number;
  /** Set when the idle timeout ended it (a leak). */
  expiredAt?: number;
  /** How it ended: `request` = a terminate call, `self` = run-task or a task's terminateOnCompletion. */
  terminatedBy?: 'request' | 'self';
  /** The start-session (or run-task) request body as received, redacted as a task's `body` is. */
  startBody: unknown;
  tasks: TaskRecord[];
}

export interface RequestRecord {
  method: string;
  path: string;
  /** HTTP status answered; 0 when the socket was hung up on purpose. */
  status: number;
  /** Only whether the header was `missing`, `invalid` or `valid`: never the key. Absent on non-API routes. */
  authorization?: string;
  /** The endpoint the request was classified as. */
  endpoint?: Exclude<Endpoint, 'any'>;
  /** The session the request named, if any. */
  sessionId?: string;
  /** True when an injected fault answered (or delayed) it. */
  fault?: boolean;
}

/** The `type` of a doorbell body: how the task's pending stretch ended. */
export type DoorbellType = 'task_completed' | 'guardrail_trigger' | 'failed';

export interface DoorbellRecord {
  /** `task`: the task ended; `early`: scripted bell before the end; `forged`: `ringDoorbell()`. */
  kind: 'task' | 'early' | 'forged';
  sessionId?: string;
  taskId?: string;
  type?: DoorbellType;
  /** Where it rang: origin and path only (no query, fragment or credentials). */
  url: string;
  /** When the bell was due (task end + delayMs, or the forge call). */
  at: number;
  /**
   * `scheduled` (waiting for its delay), `ringing` (POST in flight), `answered` (see `status`), `error` (network
   * error or timeout, see `error`), `refused` (not a loopback URL, never sent), `dropped` (scripted drop).
   */
  state: 'scheduled' | 'ringing' | 'answered' | 'error' | 'refused' | 'dropped';
  /** HTTP status the receiver answered. */
  status?: number;
  error?: string;
}

/** An arbitrary doorbell to ring (`Emulator.ringDoorbell`, `POST /__emulator/doorbell`): loopback URLs only. */
export interface ForgedDoorbell {
  url: string;
  /** @default "POST" */
  method?: string;
  /** A string is sent as is; anything else as JSON. @default {} */
  body?: unknown;
  /** Sent as given (e.g. `authorization`); never recorded. content-type defaults from the body. */
  headers?: Record<string, string>;
}

export interface LedgerOptions {
  /** Show the values of `secrets[].fields` and guardrail answers instead of `"[redacted]"`. @default false */
  reveal?: boolean;
}

export interface Ledger {
  sessions: SessionRecord[];
  created: number;
  terminated: number;
  open: number;
  expired: number;
  /** The most sessions ever open at the same time. */
  maxOpen: number;
  requests: RequestRecord[];
  /** Every doorbell, in the order it was scheduled (never its `auth`). */
  doorbells: DoorbellRecord[];
}

export interface EmulatorOptions {
  /** 0 (default) = a free port. */
  port?: number;
  /** If set only `Bearer <apiKey>` is accepted; otherwise any non-empty Bearer token. */
  apiKey?: string;
  /** @default 2 */
  pendingPolls?: number;
  /** @default 'documented' */
  shape?: ResponseShape;
  /** Inactivity expiry. @default 300000 */
  sessionIdleMs?: number;
  /**
   * How long send-message (a newTask, or a guardrail answer that resumes a task) holds a not-yet-finished task
   * before answering pending. A task that stops within the hold (pendingPolls 0 and pendingMs <= sendHoldMs) is
   * answered inline, like the real ~50 s hold. @default 0
   */
  sendHoldMs?: number;
  /** start-session and run-task answer 429 SESSION_LIMIT_REACHED while this many sessions are open. @default no limit */
  maxSessions?: number;
  /** `balance` in the start-session answer (USD). @default 12.5 */
  balance?: number;
  /** Default `TaskBehaviour.cost`. @default a token-based estimate */
  taskCost?: number;
  /** Default `TaskBehaviour.costPerSecond` (wins over `taskCost`). @default none */
  costPerSecond?: number;
  /** How long a task sent with a `webhook` stays pending when its behaviour gives no `pendingMs`. @default 200 */
  webhookPendingMs?: number;
  /** Default doorbell script of tasks whose behaviour has none. @default rings once, at once */
  doorbell?: DoorbellScript;
  /** Optional request log: one line per request or doorbell, never bodies or headers. */
  log?: (line: string) => void;
}

export interface Emulator {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Consumed in order by each newTask (across sessions); when empty the default is {outcome:'completed'}. */
  enqueueTasks(...behaviours: TaskBehaviour[]): void;
  injectFault(rule: FaultRule): void;
  /**
   * A snapshot (deep copy). Values of `secrets[].fields` and guardrail answers are `"[redacted]"` (names kept);
   * `reveal: true` shows them, for tests that check what reached the API. Never over HTTP.
   */
  ledger(opts?: LedgerOptions): Ledger;
  /** Clears queue, faults and ledger; cancels doorbells not yet answered. */
  reset(): void;
  /** Stops listening, closes open sockets, clears timers, aborts doorbells. */
  close(): Promise<void>;
  /** Rings an arbitrary doorbell now and resolves with its record once answered (or refused, or failed). */
  ringDoorbell(bell: ForgedDoorbell): Promise<DoorbellRecord>;
  /** Resolves once no doorbell is scheduled or ringing. */
  doorbellsSettled(): Promise<void>;
}
