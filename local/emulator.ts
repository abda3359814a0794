/**
 * A loopback emulator of the webrun HTTP API (`/start/start-session`, `/start/send-message`, `/start/run-task`,
 * `GET /task/{sessionId}/{taskId}`), answering with the response shapes the vendor documents (see
 * /work/shared/webrun-api/API-NOTES.md). Tests script it: queued task behaviours (pending for a while, completed,
 * guardrail, failed, stuck), injected faults (429/5xx, latency, hang-ups, non-JSON bodies) and a ledger of every
 * session and request, so a test can assert that every session created was terminated exactly once.
 *
 * node:http only. Binds 127.0.0.1. The API key is compared in memory and never logged or stored: the ledger only
 * records whether an Authorization header was missing, invalid or valid.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------------

export type TaskOutcome = 'completed' | 'guardrail' | 'failed' | 'stuck';
export type ResponseShape = 'documented' | 'status';

export interface TaskBehaviour {
  /** `stuck` = pending forever. */
  outcome: TaskOutcome;
  /**
   * GET /task answers pending this many times before the outcome.
   * @default options.pendingPolls (2), or 0 when only `pendingMs` is given
   */
  pendingPolls?: number;
  /** Pending until this many ms after the task was sent (combined with `pendingPolls` when both are given). */
  pendingMs?: number;
  /** The outcome is returned directly in the send-message answer (the task finished within the ~50 s hold). */
  inline?: boolean;
  /** Guardrail question. @default "I need login credentials" */
  question?: string;
  /** Failure reason. @default "Navigation failed: page did not load" */
  reason?: string;
  /** Replaces the completed `data` entirely. */
  data?: Record<string, unknown>;
  /** Answer shape for this task. @default options.shape ('documented') */
  shape?: ResponseShape;
}

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
  /** Error text in the body (addition); defaults from the code. */
  error?: string;
  /** Sets the Retry-After header. */
  retryAfterSeconds?: number;
  /** Answer this raw text (e.g. '<html>oops') with `status` (default 200). */
  rawBody?: string;
  /** Content-Type of `rawBody` (addition). @default "text/html; charset=utf-8" */
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

/** Where a task is now (addition). */
export type TaskStatus = 'pending' | 'completed' | 'guardrail' | 'failed';

export interface TaskRecord {
  taskId: string;
  taskDetails: string;
  /** The send-message `message` (or run-task body) as received. */
  body: unknown;
  /** The behaviour's outcome (what the task was scripted to do). */
  outcome: TaskOutcome;
  /** GET /task requests for this task. */
  polls: number;
  sentAt: number;
  /** Current state (addition). */
  status: TaskStatus;
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
  /**
   * How it ended (addition): `request` = a terminate call, `self` = run-task or a task's terminateOnCompletion.
   */
  terminatedBy?: 'request' | 'self';
  /** The start-session (or run-task) request body as received. */
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
  /** The endpoint the request was classified as (addition). */
  endpoint?: Exclude<Endpoint, 'any'>;
  /** The session the request named, if any (addition). */
  sessionId?: string;
  /** True when an injected fault answered (or delayed) it (addition). */
  fault?: boolean;
}

export interface Ledger {
  sessions: SessionRecord[];
  created: number;
  terminated: number;
  open: number;
  expired: number;
  requests: RequestRecord[];
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
   * How long send-message holds a not-yet-finished task before answering pending. A task that finishes within
   * the hold (pendingPolls 0 and pendingMs <= sendHoldMs) is answered inline, like the real ~50 s hold. @default 0
   */
  sendHoldMs?: number;
  /** Optional request log: one line per request, never bodies or headers. */
  log?: (line: string) => void;
}

export interface Emulator {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Consumed in order by each newTask (across sessions); when empty the default is {outcome:'completed'}. */
  enqueueTasks(...behaviours: TaskBehaviour[]): void;
  injectFault(rule: FaultRule): void;
  /** A snapshot (deep copy). */
  ledger(): Ledger;
  /** Clears queue, faults and ledger. */
  reset(): void;
  /** Stops listening, closes open sockets, clears timers. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Constants and small helpers
// ---------------------------------------------------------------------------------------------------------------

const MAX_TASK_MS = 300_000;
const MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_QUESTION = 'I need login credentials';
const DEFAULT_REASON = 'Navigation failed: page did not load';
const OUTCOMES: readonly TaskOutcome[] = ['completed', 'guardrail', 'failed', 'stuck'];
const SHAPES: readonly ResponseShape[] = ['documented', 'status'];
const ENDPOINTS: readonly Endpoint[] = ['start', 'send', 'terminate', 'poll', 'run-task', 'any'];
const OUTPUT_TYPES = ['text', 'structured_json', 'structured_csv'];

const STATUS_FOR_CODE: Record<string, number> = {
  INVALID_REQUEST: 400,
  INVALID_API_KEY: 401,
  API_KEY_EXPIRED: 401,
  UNAUTHORIZED: 401,
  INSUFFICIENT_BALANCE: 402,
  ACCOUNT_DEACTIVATED: 403,
  SESSION_NOT_FOUND: 404,
  SESSION_EXPIRED: 404,
  TASK_NOT_FOUND: 404,
  TASK_ALREADY_RUNNING: 409,
  SESSION_LIMIT_REACHED: 429,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL_ERROR: 500,
  INSTANCE_UNAVAILABLE: 503,
  NAVIGATION_TIMEOUT: 504,
  TASK_TIMEOUT: 504,
};

const CODE_FOR_STATUS: Record<number, string> = {
  400: 'INVALID_REQUEST',
  401: 'INVALID_API_KEY',
  402: 'INSUFFICIENT_BALANCE',
  403: 'ACCOUNT_DEACTIVATED',
  404: 'SESSION_NOT_FOUND',
  409: 'TASK_ALREADY_RUNNING',
  429: 'RATE_LIMIT_EXCEEDED',
  500: 'INTERNAL_ERROR',
  502: 'INTERNAL_ERROR',
  503: 'INSTANCE_UNAVAILABLE',
  504: 'NAVIGATION_TIMEOUT',
};

const ERROR_TEXT: Record<string, string> = {
  INVALID_REQUEST: 'Invalid request',
  INVALID_API_KEY: 'Invalid API key',
  API_KEY_EXPIRED: 'API key expired',
  UNAUTHORIZED: 'Unauthorized',
  INSUFFICIENT_BALANCE: 'Insufficient balance',
  ACCOUNT_DEACTIVATED: 'Account deactivated',
  SESSION_NOT_FOUND: 'Session not found',
  SESSION_EXPIRED: 'Session expired',
  SESSION_LIMIT_REACHED: 'Session limit reached',
  TASK_NOT_FOUND: 'Task not found',
  TASK_ALREADY_RUNNING: 'A task is already running in this session',
  RATE_LIMIT_EXCEEDED: 'Rate limit exceeded',
  INTERNAL_ERROR: 'Internal server error',
  INSTANCE_UNAVAILABLE: 'No browser instance available, try again later',
  NAVIGATION_TIMEOUT: 'Navigation timed out',
  TASK_TIMEOUT: 'Task timed out',
};

type Json = Record<string, unknown>;

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function ok(body: Json): Reply {
  return { status: 200, body };
}

function apiError(status: number, code: string, error?: string): Reply {
  return { status, body: { success: false, error: error ?? ERROR_TEXT[code] ?? 'Error', code } };
}

function badRequest(error: string): Reply {
  return apiError(400, 'INVALID_REQUEST', error);
}

function newId(): string {
  return randomBytes(6).toString('hex');
}

function nonNegInt(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new TypeError(`${name} must be a non-negative integer`);
  return v;
}

/** Validates a maxDuration field; returns an error text or undefined. */
function checkMaxDuration(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > MAX_TASK_MS) {
    return `${name} must be a number from 1 to ${MAX_TASK_MS}`;
  }
  return undefined;
}

/** Site credentials as the API documents them: `[{ match, fields: { name: value } }]`. */
function checkSecrets(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return `${field} must be an array of { match, fields }`;
  for (const [i, item] of value.entries()) {
    if (!isObject(item) || typeof item.match !== 'string' || item.match === '') return `${field}[${i}].match must be a non-empty string`;
    if (!isObject(item.fields) || !Object.values(item.fields).every((v) => typeof v === 'string')) return `${field}[${i}].fields must be an object of strings`;
  }
  return undefined;
}

function checkOutputType(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !OUTPUT_TYPES.includes(v)) return `${name} must be one of ${OUTPUT_TYPES.join(', ')}`;
  return undefined;
}

export function validateTaskBehaviour(b: unknown): TaskBehaviour {
  if (!isObject(b)) throw new TypeError('a task behaviour must be an object');
  if (!OUTCOMES.includes(b.outcome as TaskOutcome)) throw new TypeError(`outcome must be one of ${OUTCOMES.join(', ')}`);
  nonNegInt(b.pendingPolls, 'pendingPolls');
  nonNegInt(b.pendingMs, 'pendingMs');
  if (b.shape !== undefined && !SHAPES.includes(b.shape as ResponseShape)) throw new TypeError('shape must be documented or status');
  if (b.data !== undefined && !isObject(b.data)) throw new TypeError('data must be an object');
  for (const k of ['question', 'reason'] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'string') throw new TypeError(`${k} must be a string`);
  }
  return { ...(b as unknown as TaskBehaviour) };
}

export function validateFaultRule(r: unknown): FaultRule {
  if (!isObject(r)) throw new TypeError('a fault rule must be an object');
  if (!ENDPOINTS.includes(r.endpoint as Endpoint)) throw new TypeError(`endpoint must be one of ${ENDPOINTS.join(', ')}`);
  const rule = { ...(r as unknown as FaultRule) };
  if (r.times === null || r.times === 'Infinity') rule.times = Infinity;
  if (rule.times !== undefined && rule.times !== Infinity) nonNegInt(rule.times, 'times');
  nonNegInt(rule.skip, 'skip');
  nonNegInt(rule.latencyMs, 'latencyMs');
  nonNegInt(rule.retryAfterSeconds, 'retryAfterSeconds');
  if (rule.status !== undefined && (!Number.isInteger(rule.status) || rule.status < 100 || rule.status > 599)) {
    throw new TypeError('status must be an HTTP status code');
  }
  if (rule.code !== undefined && typeof rule.code !== 'string') throw new TypeError('code must be a string');
  if (rule.rawBody !== undefined && typeof rule.rawBody !== 'string') throw new TypeError('rawBody must be a string');
  return rule;
}

// ---------------------------------------------------------------------------------------------------------------
// Task results: plausible completed data, structured output from a JSON schema, token usage
// ---------------------------------------------------------------------------------------------------------------

function shorten(s: string, max = 160): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

function singular(key: string): string {
  return key.endsWith('s') && key.length > 1 ? key.slice(0, -1) : key;
}

/** A sample value for a JSON schema: object properties by type, arrays of one item. */
export function sampleFromSchema(schema: unknown, key = 'result', depth = 0): unknown {
  if (!isObject(schema) || depth > 8) return `Sample ${key}`;
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if ('example' in schema) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = schema[k];
    if (schema.type === undefined && Array.isArray(list) && list.length > 0) return sampleFromSchema(list[0], key, depth + 1);
  }
  let type: unknown = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? 'null';
  if (typeof type !== 'string') type = isObject(schema.properties) ? 'object' : schema.items !== undefined ? 'array' : 'string';
  const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  const clamp = (n: number): number => Math.min(max ?? Infinity, Math.max(min ?? -Infinity, n));
  switch (type) {
    case 'object': {
      const out: Json = {};
      if (isObject(schema.properties)) {
        for (const [k, sub] of Object.entries(schema.properties)) out[k] = sampleFromSchema(sub, k, depth + 1);
      }
      return out;
    }
    case 'array':
      return [sampleFromSchema(schema.items, singular(key), depth + 1)];
    case 'integer':
      return Math.round(clamp(42));
    case 'number':
      return clamp(19.99);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default: {
      let s: string;
      switch (schema.format) {
        case 'uri':
        case 'url':
          s = `https://example.com/${encodeURIComponent(key)}/1`;
          break;
        case 'email':
          s = 'user@example.com';
          break;
        case 'date':
          s = '2024-01-15';
          break;
        case 'date-time':
          s = '2024-01-15T10:00:00Z';
          break;
        default:
          s = `Sample ${key}`;
      }
      if (typeof schema.maxLength === 'number' && s.length > schema.maxLength) s = s.slice(0, schema.maxLength);
      return s;
    }
  }
}

function csvCell(v: unknown): string {
  const s = typeof v === 'string' ? v : Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(';') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function completedData(message: Json, taskDetails: string): Json {
  const summary = shorten(taskDetails);
  const outputType = message.outputType;
  const schema = message.outputSchema;
  if (outputType === 'structured_json') {
    let output = sampleFromSchema(schema);
    const usable = Array.isArray(output) || (isObject(output) && Object.keys(output).length > 0);
    if (!isObject(schema) || !usable) output = { result: `Completed: ${summary}` };
    return { message: JSON.stringify(output), output };
  }
  if (outputType === 'structured_csv') {
    let row: unknown = isObject(schema) ? sampleFromSchema(schema) : undefined;
    if (Array.isArray(row)) row = row[0];
    if (!isObject(row) || Object.keys(row).length === 0) row = { result: `Completed: ${summary}`, source: 'https://example.com' };
    const r = row as Json;
    const csv = `${Object.keys(r).map(csvCell).join(',')}\n${Object.values(r).map(csvCell).join(',')}\n`;
    return { message: csv };
  }
  return { message: `Done: ${summary}. The task was completed successfully and the page shows the expected result.` };
}

function usageFor(taskDetails: string): { inputTokens: number; outputTokens: number; cost: number } {
  const inputTokens = 1200 + Math.min(taskDetails.length, 2000) * 7;
  const outputTokens = 180 + Math.min(taskDetails.length, 2000);
  const cost = Math.round((inputTokens * 3 + outputTokens * 15) / 1e6 * 1e6) / 1e6;
  return { inputTokens, outputTokens, cost };
}

// ---------------------------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------------------------

interface TaskState {
  rec: TaskRecord;
  sessionId: string;
  behaviour: TaskBehaviour;
  /** What the task ends with now (a guardrail resumed becomes `completed`). */
  target: TaskOutcome;
  pendingPolls: number;
  pendingAnswered: number;
  readyAt: number;
  shape: ResponseShape;
  message: Json;
  reason?: string;
  terminateOnCompletion: boolean;
}

interface SessionState {
  rec: SessionRecord;
  tasks: Map<string, TaskState>;
}

interface FaultState {
  rule: FaultRule;
  seen: number;
  applied: number;
}

type AuthState = 'missing' | 'invalid' | 'valid';

type Route =
  | { kind: 'root' }
  | { kind: 'control'; name: 'ledger' | 'tasks' | 'faults' | 'reset' }
  | { kind: 'api'; endpoint: 'start' | 'send' | 'run-task' | 'poll'; sessionId?: string; taskId?: string }
  | { kind: 'not-found' }
  | { kind: 'method' };

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError('port must be an integer from 0 to 65535');
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) {
    throw new TypeError('apiKey must be a non-empty string');
  }
  const defaultPendingPolls = nonNegInt(options.pendingPolls, 'pendingPolls') ?? 2;
  const defaultShape: ResponseShape = options.shape ?? 'documented';
  if (!SHAPES.includes(defaultShape)) throw new TypeError('shape must be documented or status');
  const idleMs = options.sessionIdleMs ?? 300_000;
  if (!Number.isFinite(idleMs) || idleMs <= 0) throw new TypeError('sessionIdleMs must be a positive number');
  const sendHoldMs = nonNegInt(options.sendHoldMs, 'sendHoldMs') ?? 0;
  const log = options.log;
  // Only a digest of the key is kept, for a constant-time comparison.
  const keyDigest = options.apiKey === undefined ? undefined : createHash('sha256').update(options.apiKey).digest();

  let queue: TaskBehaviour[] = [];
  let faults: FaultState[] = [];
  let sessions = new Map<string, SessionState>();
  let sessionOrder: SessionState[] = [];
  let requests: RequestRecord[] = [];
  let closed = false;
  let baseUrl = '';

  const sleepers = new Set<() => void>();
  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (closed || ms <= 0) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  }

  // --- sessions -------------------------------------------------------------------------------------------------

  function isOpen(s: SessionState): boolean {
    return s.rec.terminatedAt === undefined && s.rec.expiredAt === undefined;
  }

  function expireIfIdle(s: SessionState, now: number): void {
    if (isOpen(s) && now - s.rec.lastActivityAt >= idleMs) s.rec.expiredAt = s.rec.lastActivityAt + idleMs;
  }

  function sweep(): void {
    const now = Date.now();
    for (const s of sessionOrder) expireIfIdle(s, now);
  }

  const sweepTimer = setInterval(sweep, Math.max(5, Math.min(1000, Math.floor(idleMs / 2))));
  sweepTimer.unref();

  function endSession(s: SessionState, by: 'request' | 'self'): void {
    s.rec.terminatedAt = Date.now();
    s.rec.terminatedBy = by;
    if (by === 'request') s.rec.terminateCalls += 1;
  }

  function createSession(startBody: unknown): SessionState {
    let sessionId = newId();
    while (sessions.has(sessionId)) sessionId = newId();
    const now = Date.now();
    const s: SessionState = {
      rec: { sessionId, createdAt: now, lastActivityAt: now, terminateCalls: 0, terminateRequests: 0, startBody, tasks: [] },
      tasks: new Map(),
    };
    sessions.set(sessionId, s);
    sessionOrder.push(s);
    return s;
  }

  /** Finds a session, expiring it first if idle, and counts the request as activity when it is open. */
  function lookup(sessionId: string): SessionState | undefined {
    const s = sessions.get(sessionId);
    if (!s) return undefined;
    const now = Date.now();
    expireIfIdle(s, now);
    if (isOpen(s)) s.rec.lastActivityAt = now;
    return s;
  }

  function closedSessionError(s: SessionState | undefined): Reply {
    if (s?.rec.expiredAt !== undefined) return apiError(404, 'SESSION_EXPIRED', 'Session expired after inactivity');
    if (s) return apiError(404, 'SESSION_NOT_FOUND', 'Session not found or already terminated');
    return apiError(404, 'SESSION_NOT_FOUND', 'Session not found');
  }

  // --- tasks ----------------------------------------------------------------------------------------------------

  function createTask(s: SessionState, taskDetails: string, body: unknown, message: Json, behaviour: TaskBehaviour): TaskState {
    let taskId = newId();
    while (s.tasks.has(taskId)) taskId = newId();
    const now = Date.now();
    const rec: TaskRecord = { taskId, taskDetails, body, outcome: behaviour.outcome, polls: 0, sentAt: now, status: 'pending' };
    const pendingPolls = behaviour.pendingPolls ?? (behaviour.pendingMs !== undefined ? 0 : defaultPendingPolls);
    const t: TaskState = {
      rec,
      sessionId: s.rec.sessionId,
      behaviour,
      target: behaviour.outcome,
      pendingPolls,
      pendingAnswered: 0,
      readyAt: now + (behaviour.pendingMs ?? 0),
      shape: behaviour.shape ?? defaultShape,
      message,
      terminateOnCompletion: message.terminateOnCompletion === true,
    };
    s.tasks.set(taskId, t);
    s.rec.tasks.push(rec);
    return t;
  }

  function isReady(t: TaskState, now: number): boolean {
    return t.target !== 'stuck' && t.pendingAnswered >= t.pendingPolls && now >= t.readyAt;
  }

  function finalize(t: TaskState, status: Exclude<TaskStatus, 'pending'>, reason?: string): void {
    t.rec.status = status;
    if (status === 'failed') t.reason = reason ?? t.behaviour.reason ?? DEFAULT_REASON;
    if (t.terminateOnCompletion && (status === 'completed' || status === 'failed')) {
      const s = sessions.get(t.sessionId);
      if (s && isOpen(s)) endSession(s, 'self');
    }
  }

  function finish(t: TaskState): void {
    finalize(t, t.target as Exclude<TaskOutcome, 'stuck'>);
  }

  function dataOf(t: TaskState): Json {
    return t.behaviour.data ? structuredClone(t.behaviour.data) : completedData(t.message, t.rec.taskDetails);
  }

  function guardrailData(t: TaskState): Json {
    return { type: 'human_input_needed', value: t.behaviour.question ?? DEFAULT_QUESTION };
  }

  /** The answer for a finished task. `where` = the poll URL (top level in the documented shape) or send-message. */
  function finalAnswer(t: TaskState, where: 'poll' | 'send'): Json {
    const ids = { success: true, sessionId: t.sessionId, taskId: t.rec.taskId };
    const status = t.rec.status;
    if (status === 'failed') return { ...ids, status: 'failed', error: t.reason ?? DEFAULT_REASON };
    if (status === 'guardrail') {
      const result = { type: 'guardrail_trigger', data: guardrailData(t) };
      return where === 'poll' && t.shape === 'documented' ? result : { ...ids, result };
    }
    const usage = usageFor(t.rec.taskDetails);
    if (t.shape === 'status') {
      const data = t.behaviour.data ? dataOf(t) : { ...dataOf(t), inputTokens: usage.inputTokens, outputTokens: usage.outputTokens };
      return { ...ids, status: 'complete', result: { type: 'task_completed', data }, usage };
    }
    if (where === 'poll') {
      return {
        type: 'task_completed',
        data: dataOf(t),
        usage: { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens, cost: usage.cost },
      };
    }
    return { ...ids, result: { type: 'task_completed', data: dataOf(t) } };
  }

  function pendingSendAnswer(t: TaskState): Json {
    const ids = { success: true, sessionId: t.sessionId, taskId: t.rec.taskId };
    const pollUrl = `${baseUrl}/task/${t.sessionId}/${t.rec.taskId}`;
    return t.shape === 'status' ? { ...ids, status: 'pending', pollUrl } : { ...ids, pending: true, pollUrl };
  }

  function pendingPollAnswer(t: TaskState): Json {
    const ids = { success: true, sessionId: t.sessionId, taskId: t.rec.taskId };
    if (t.shape === 'documented') return { ...ids, pending: true };
    const full = usageFor(t.rec.taskDetails);
    const frac = Math.min(1, t.pendingAnswered / (t.pendingPolls + 1));
    return {
      ...ids,
      status: t.pendingAnswered % 2 === 1 ? 'active' : 'pending',
      usage: { inputTokens: Math.round(full.inputTokens * frac), outputTokens: Math.round(full.outputTokens * frac) },
    };
  }

  // --- handlers -------------------------------------------------------------------------------------------------

  function handleStart(body: unknown): Reply {
    if (!isObject(body)) return badRequest('Request body must be a JSON object');
    if (body.mode !== undefined && body.mode !== 'default') return badRequest('mode must be "default"');
    if (body.profileId !== undefined && body.profileId !== null && typeof body.profileId !== 'string') {
      return badRequest('profileId must be a string');
    }
    let initialPrompt = '';
    if (body.initialTask !== undefined && body.initialTask !== null) {
      const it = body.initialTask;
      if (!isObject(it)) return badRequest('initialTask must be an object');
      const err = checkMaxDuration(it.maxDuration, 'initialTask.maxDuration') ?? checkOutputType(it.outputType, 'initialTask.outputType');
      if (err) return badRequest(err);
      if (it.taskDetails !== undefined && typeof it.taskDetails !== 'string') return badRequest('initialTask.taskDetails must be a string');
      initialPrompt = typeof it.taskDetails === 'string' ? it.taskDetails : '';
    }
    const s = createSession(structuredClone(body));
    const sid = s.rec.sessionId;
    return ok({
      success: true,
      sessionId: sid,
      socketURL: baseUrl,
      streaming: {
        webRTCURL: `https://127.0.0.1:8889/${sid}/whep`,
        webViewURL: `https://127.0.0.1:8889/${sid}`,
        dimensions: { width: 1024, height: 600 },
      },
      initialPrompt,
      expiresIn: 300000,
      balance: 12.5,
      message: 'Connect to instance using sessionId in auth',
    });
  }

  function validateTaskFields(m: Json, prefix: string): string | undefined {
    if (typeof m.taskDetails !== 'string' || m.taskDetails.trim() === '') return `${prefix}taskDetails must be a non-empty string`;
    return checkMaxDuration(m.maxDuration, `${prefix}maxDuration`) ?? checkOutputType(m.outputType, `${prefix}outputType`) ?? checkSecrets(m.secrets, `${prefix}secrets`);
  }

  async function handleSend(body: unknown): Promise<Reply> {
    if (!isObject(body)) return badRequest('Request body must be a JSON object');
    if (typeof body.sessionId !== 'string' || body.sessionId === '') return badRequest('sessionId is required');
    const m = body.message;
    if (!isObject(m)) return badRequest('message must be an object');
    if (typeof m.actionType !== 'string') return badRequest('message.actionType is required');
    const s = lookup(body.sessionId);
    const sessionId = body.sessionId;

    if (m.actionType === 'state' && m.newState === 'terminate') {
      if (!s) return closedSessionError(undefined);
      s.rec.terminateRequests += 1;
      if (!isOpen(s)) return closedSessionError(s);
      endSession(s, 'request');
      return ok({ success: true, sessionId, message: 'Session terminated' });
    }
    if (!s || !isOpen(s)) return closedSessionError(s);
    const tasks = [...s.tasks.values()];

    switch (m.actionType) {
      case 'newTask': {
        if (m.newState !== 'start') return badRequest('message.newState must be "start" for newTask');
        const err = validateTaskFields(m, 'message.');
        if (err) return badRequest(err);
        const running = tasks.find((t) => t.rec.status === 'pending');
        if (running) return apiError(409, 'TASK_ALREADY_RUNNING', `Task ${running.rec.taskId} is still running in this session`);
        const behaviour = queue.shift() ?? { outcome: 'completed' };
        const t = createTask(s, m.taskDetails as string, structuredClone(m), m, behaviour);
        if (behaviour.inline && behaviour.outcome !== 'stuck') {
          finish(t);
          return ok(finalAnswer(t, 'send'));
        }
        if (sendHoldMs > 0) {
          const wait = t.target !== 'stuck' && t.pendingPolls === 0 ? t.readyAt - Date.now() : Infinity;
          if (wait <= sendHoldMs) {
            await sleep(wait);
            if (t.rec.status === 'pending' && isReady(t, Date.now())) finish(t);
          } else {
            await sleep(sendHoldMs);
          }
          if (t.rec.status !== 'pending') return ok(finalAnswer(t, 'send'));
        }
        return ok(pendingSendAnswer(t));
      }
      case 'state': {
        if (m.newState === 'pause' || m.newState === 'resume') return ok({ success: true, sessionId, message: `Session ${m.newState}d` });
        if (m.newState === 'stop') {
          for (const t of tasks) if (t.rec.status === 'pending' || t.rec.status === 'guardrail') finalize(t, 'failed', 'stopped');
          return ok({ success: true, sessionId, message: 'Task stopped' });
        }
        return badRequest('message.newState must be one of pause, resume, stop, terminate');
      }
      case 'guardrail': {
        const waiting = tasks.filter((t) => t.rec.status === 'guardrail');
        const t = typeof m.taskId === 'string' ? waiting.find((x) => x.rec.taskId === m.taskId) : waiting[waiting.length - 1];
        if (!t) return badRequest('No task is waiting for a guardrail answer');
        if (m.newState === 'resume') {
          t.rec.status = 'pending';
          t.target = 'completed';
          t.pendingAnswered = 0;
          t.readyAt = Date.now() + (t.behaviour.pendingMs ?? 0);
          return ok(pendingSendAnswer(t));
        }
        if (m.newState === 'stop') {
          finalize(t, 'failed', 'stopped');
          return ok({ success: true, sessionId, taskId: t.rec.taskId, message: 'Task stopped' });
        }
        return badRequest('message.newState must be "resume" or "stop" for guardrail');
      }
      case 'interaction':
        return ok({ success: true, sessionId, message: 'Interaction received' });
      default:
        return badRequest(`Unknown actionType: ${shorten(m.actionType, 40)}`);
    }
  }

  function handlePoll(sessionId: string, taskId: string): Reply {
    const s = lookup(sessionId);
    if (!s || !isOpen(s)) return closedSessionError(s);
    const t = s.tasks.get(taskId);
    if (!t) return apiError(404, 'TASK_NOT_FOUND', 'Task not found');
    t.rec.polls += 1;
    if (t.rec.status === 'pending') {
      if (isReady(t, Date.now())) {
        finish(t);
      } else {
        t.pendingAnswered += 1;
        return ok(pendingPollAnswer(t));
      }
    }
    return ok(finalAnswer(t, 'poll'));
  }

  function handleRunTask(body: unknown): Reply {
    if (!isObject(body)) return badRequest('Request body must be a JSON object');
    const err = validateTaskFields(body, '');
    if (err) return badRequest(err);
    const s = createSession(structuredClone(body));
    const t = createTask(s, body.taskDetails as string, structuredClone(body), body, { outcome: 'completed', shape: defaultShape });
    finish(t);
    endSession(s, 'self');
    return ok(finalAnswer(t, 'send'));
  }

  function handleControl(name: 'ledger' | 'tasks' | 'faults' | 'reset', body: unknown): Reply {
    try {
      switch (name) {
        case 'ledger':
          return { status: 200, body: snapshot() };
        case 'reset':
          reset();
          return ok({ ok: true });
        case 'tasks': {
          const list = (Array.isArray(body) ? body : [body]).map(validateTaskBehaviour);
          queue.push(...list);
          return ok({ ok: true, queued: queue.length });
        }
        case 'faults': {
          const list = (Array.isArray(body) ? body : [body]).map(validateFaultRule);
          for (const rule of list) faults.push({ rule, seen: 0, applied: 0 });
          return ok({ ok: true, faults: faults.length });
        }
      }
    } catch (e) {
      return badRequest(e instanceof Error ? e.message : String(e));
    }
  }

  // --- faults, auth, routing ------------------------------------------------------------------------------------

  function pickFault(endpoint: Exclude<Endpoint, 'any'>): FaultRule | undefined {
    let picked: FaultState | undefined;
    for (const f of faults) {
      if (f.rule.endpoint !== endpoint && f.rule.endpoint !== 'any') continue;
      f.seen += 1;
      if (!picked && f.seen > (f.rule.skip ?? 0) && f.applied < (f.rule.times ?? 1)) picked = f;
    }
    if (picked) picked.applied += 1;
    return picked?.rule;
  }

  function authState(header: string | undefined): AuthState {
    if (header === undefined || header === '') return 'missing';
    const m = /^Bearer[ \t]+(\S.*)$/i.exec(header.trim());
    if (!m) return 'invalid';
    if (!keyDigest) return 'valid';
    const got = createHash('sha256').update(m[1].trim()).digest();
    return timingSafeEqual(got, keyDigest) ? 'valid' : 'invalid';
  }

  function route(method: string, path: string): Route {
    const known = (want: string, r: Route): Route => (method === want ? r : { kind: 'method' });
    switch (path) {
      case '/':
        return known('GET', { kind: 'root' });
      case '/__emulator/ledger':
        return known('GET', { kind: 'control', name: 'ledger' });
      case '/__emulator/tasks':
        return known('POST', { kind: 'control', name: 'tasks' });
      case '/__emulator/faults':
        return known('POST', { kind: 'control', name: 'faults' });
      case '/__emulator/reset':
        return known('POST', { kind: 'control', name: 'reset' });
      case '/start/start-session':
        return known('POST', { kind: 'api', endpoint: 'start' });
      case '/start/send-message':
        return known('POST', { kind: 'api', endpoint: 'send' });
      case '/start/run-task':
        return known('POST', { kind: 'api', endpoint: 'run-task' });
    }
    const m = /^\/task\/([^/]+)\/([^/]+)\/?$/.exec(path);
    if (m) {
      try {
        return known('GET', { kind: 'api', endpoint: 'poll', sessionId: decodeURIComponent(m[1]), taskId: decodeURIComponent(m[2]) });
      } catch {
        return { kind: 'not-found' };
      }
    }
    return { kind: 'not-found' };
  }

  function readBody(req: IncomingMessage): Promise<{ text: string; tooLarge: boolean }> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) tooLarge = true;
        else chunks.push(c);
      });
      req.on('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), tooLarge }));
      req.on('error', reject);
    });
  }

  function send(res: ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      ...reply.headers,
    });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?')[0] || '/';
    let entry: RequestRecord | undefined;
    const finishLog = (status: number): void => {
      if (entry) {
        entry.status = status;
        requests.push(entry);
      }
      log?.(`${method} ${path} ${status === 0 ? 'hangup' : status} ${Date.now() - started}ms${entry?.fault ? ' (fault)' : ''}`);
    };
    const answer = (reply: Reply): void => {
      send(res, reply);
      finishLog(reply.status);
    };

    let raw: { text: string; tooLarge: boolean };
    try {
      raw = await readBody(req);
    } catch {
      return; // client went away
    }
    const r = route(method, path);
    if (r.kind === 'root') return answer(ok({ ok: true, name: 'webrun-emulator' }));
    if (raw.tooLarge) return answer(apiError(413, 'INVALID_REQUEST', 'Request body too large'));

    let body: unknown;
    let parsed = true;
    if (method === 'POST') {
      try {
        body = JSON.parse(raw.text);
      } catch {
        parsed = false;
      }
    }
    if (r.kind === 'control') {
      if (!parsed && r.name !== 'ledger' && r.name !== 'reset') return answer(badRequest('Request body must be JSON'));
      return answer(handleControl(r.name, body));
    }

    if (r.kind !== 'api') {
      entry = { method, path, status: 0 };
      return answer(r.kind === 'method' ? apiError(405, 'METHOD_NOT_ALLOWED', `Method ${method} not allowed on ${path}`) : apiError(404, 'NOT_FOUND', `No route for ${method} ${path}`));
    }

    // An API request: classify, apply a fault if one matches, then auth, then the handler.
    let endpoint: Exclude<Endpoint, 'any'> = r.endpoint;
    const b = isObject(body) ? body : undefined;
    if (endpoint === 'send' && isObject(b?.message) && b.message.actionType === 'state' && b.message.newState === 'terminate') {
      endpoint = 'terminate';
    }
    const auth = authState(req.headers.authorization);
    const sessionId = r.sessionId ?? (typeof b?.sessionId === 'string' ? b.sessionId : undefined);
    entry = { method, path, status: 0, authorization: auth, endpoint, ...(sessionId !== undefined ? { sessionId } : {}) };

    const fault = pickFault(endpoint);
    if (fault) {
      entry.fault = true;
      if (fault.latencyMs) await sleep(fault.latencyMs);
      if (closed) return;
      if (fault.hangup) {
        finishLog(0);
        req.socket.destroy();
        return;
      }
      const headers: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      if (fault.rawBody !== undefined) {
        const status = fault.status ?? 200;
        if (!res.headersSent) {
          res.writeHead(status, { 'content-type': fault.contentType ?? 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(fault.rawBody), ...headers });
          res.end(fault.rawBody);
        }
        return finishLog(status);
      }
      if (fault.status !== undefined || fault.code !== undefined) {
        const code = fault.code ?? CODE_FOR_STATUS[fault.status as number] ?? 'INTERNAL_ERROR';
        const status = fault.status ?? STATUS_FOR_CODE[code] ?? 500;
        return answer({ status, body: { success: false, error: fault.error ?? ERROR_TEXT[code] ?? 'Error', code }, headers });
      }
      // latency only: fall through to the normal answer
    }

    if (auth !== 'valid') return answer(apiError(401, 'INVALID_API_KEY', 'Invalid API key'));
    if (method === 'POST' && !parsed) return answer(badRequest('Request body must be valid JSON'));

    switch (r.endpoint) {
      case 'start':
        return answer(handleStart(body));
      case 'send': {
        const reply = await handleSend(body);
        if (closed) return;
        return answer(reply);
      }
      case 'run-task':
        return answer(handleRunTask(body));
      case 'poll':
        return answer(handlePoll(r.sessionId as string, r.taskId as string));
    }
  }

  // --- public surface -------------------------------------------------------------------------------------------

  function snapshot(): Ledger {
    sweep();
    const list = sessionOrder.map((s) => structuredClone(s.rec));
    return {
      sessions: list,
      created: list.length,
      terminated: list.filter((s) => s.terminatedAt !== undefined).length,
      open: list.filter((s) => s.terminatedAt === undefined && s.expiredAt === undefined).length,
      expired: list.filter((s) => s.expiredAt !== undefined).length,
      requests: requests.map((r) => ({ ...r })),
    };
  }

  function reset(): void {
    queue = [];
    faults = [];
    sessions = new Map();
    sessionOrder = [];
    requests = [];
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log?.(`internal error: ${e instanceof Error ? e.message : String(e)}`);
      send(res, apiError(500, 'INTERNAL_ERROR'));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${actualPort}`;

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    port: actualPort,
    enqueueTasks(...behaviours: TaskBehaviour[]): void {
      queue.push(...behaviours.map(validateTaskBehaviour));
    },
    injectFault(rule: FaultRule): void {
      faults.push({ rule: validateFaultRule(rule), seen: 0, applied: 0 });
    },
    ledger: snapshot,
    reset,
    close(): Promise<void> {
      if (closing) return closing;
      closed = true;
      clearInterval(sweepTimer);
      for (const wake of [...sleepers]) wake();
      closing = new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
