/**
 * The one typed client for the webrun HTTP API, used by every Lambda handler and by the local runner.
 *
 * It normalizes every response shape the vendor documents (see shared/webrun-api/API-NOTES.md: the docs
 * contradict themselves) into a `TaskOutcome`, and maps every HTTP or API failure onto a `WebrunError` whose
 * name is the Step Functions error name. It never puts the API key into an error, a log line or a result.
 */
import {
  ApiError,
  BadRequest,
  ConfigError,
  InsufficientBalance,
  InvalidInput,
  RateLimited,
  ServiceUnavailable,
  SessionExpired,
  SessionLimitReached,
  TaskFailed,
  Unauthorized,
  UnexpectedResponse,
  WebrunError,
} from './errors';
import { httpTransport, type HttpAnswer } from './http-transport';
import { siteSecretName } from './input';
import { CUT_MARK, MAX_API_TEXT_CHARS, redactOutcome, redactText } from './redact';
import type { TaskData, Usage } from './contract';
import type { SessionOptions, SiteCredentialRef, SiteCredentials, TaskOutcome, WorkflowTask } from './types';

export interface WebrunClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Timeout of calls that may hold the connection while the agent works (send-message, run-task). @default 65000 */
  longCallTimeoutMs?: number;
  /** Timeout of every other call. @default 15000 */
  callTimeoutMs?: number;
  /**
   * A 429 whose Retry-After is at most this many seconds is waited out and retried in place (a 429 means the
   * request was refused, so repeating it is safe); a longer one is thrown as `Webrun.RateLimited`. @default 10
   */
  maxInlineRetryAfterSeconds?: number;
  /** How many 429s one call waits out before giving up. @default 2 */
  maxInlineRetries?: number;
  /** Injected for tests and for `--wait-scale`. @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** Aborts every call in flight (the local runner being stopped). */
  signal?: AbortSignal;
  /**
   * Epoch ms by which every call must have answered (the Lambda's remaining time): call timeouts are shortened to
   * fit, and a 429 is thrown rather than waited out when its wait would not fit. @default none
   */
  deadlineAt?: number;
  now?: () => number;
  /**
   * Reads the key again, past any cache: a 401 with a key read before a rotation is tried once more with a key
   * that differs (a 401 means the request was refused, so repeating it is safe). @default none (the local runner)
   */
  refreshApiKey?: () => Promise<string>;
}

export interface StartedSession {
  sessionId: string;
  expiresIn?: number;
  balance?: number;
  /** The session's live view (`streaming.webViewURL`): a secret-grade link, shown to a person asked a question only. */
  liveViewUrl?: string;
}

/** A doorbell the API rings when a task ends (completion by webhook). */
export interface Webhook {
  name: string;
  url: string;
  auth: string;
  submittedData: 'just_ping';
}

export interface TerminateResult {
  /** False when the API said the session was already gone (expired, not found, terminated before). */
  terminated: boolean;
}

/** The guardrails of a run, whose `totp` rules name the 2FA seeds among its secrets' fields (a RunState fits). */
export interface RunGuardrails {
  guardrails?: WorkflowTask['guardrails'];
  tasks: ReadonlyArray<Pick<WorkflowTask, 'guardrails'>>;
}

type Json = Record<string, unknown>;
type Endpoint = 'start-session' | 'send-message' | 'get-task' | 'terminate';

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class WebrunClient {
  private readonly baseUrl: string;
  private apiKey: string;
  private readonly refreshApiKey?: () => Promise<string>;
  private readonly longCallTimeoutMs: number;
  private readonly callTimeoutMs: number;
  private readonly maxInlineRetryAfterSeconds: number;
  private readonly maxInlineRetries: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly signal?: AbortSignal;
  private readonly deadlineAt?: number;
  private readonly now: () => number;

  constructor(options: WebrunClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new InvalidInput('baseUrl', `is not a URL: ${JSON.stringify(options.baseUrl)}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new InvalidInput('baseUrl', `must be http(s), got ${url.protocol}`);
    }
    if (!options.apiKey) throw new Unauthorized('No webrun API key was configured.');
    this.baseUrl = url.toString().replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.refreshApiKey = options.refreshApiKey;
    this.longCallTimeoutMs = options.longCallTimeoutMs ?? 65_000;
    this.callTimeoutMs = options.callTimeoutMs ?? 15_000;
    this.maxInlineRetryAfterSeconds = options.maxInlineRetryAfterSeconds ?? 10;
    this.maxInlineRetries = options.maxInlineRetries ?? 2;
    this.sleep = options.sleep ?? defaultSleep;
    this.signal = options.signal;
    this.deadlineAt = options.deadlineAt;
    this.now = options.now ?? Date.now;
  }

  /** Milliseconds left before the deadline, if there is one. */
  private remainingMs(): number {
    return this.deadlineAt === undefined ? Infinity : this.deadlineAt - this.now();
  }

  /** Starts a browser session with no initial task (every task is sent with `sendTask`, so each has an id). */
  async startSession(options: SessionOptions): Promise<StartedSession> {
    const initialTask: Json = { taskDetails: '' };
    for (const key of ['startingPoint', 'avoidDomains', 'maxInputTokens', 'maxOutputTokens'] as const) {
      if (options[key] !== undefined) initialTask[key] = options[key];
    }
    const body: Json = { mode: 'default', initialTask };
    if (options.profileId !== undefined) body.profileId = options.profileId;
    const answer = await this.call('start-session', 'POST', '/start/start-session', body, this.longCallTimeoutMs);
    const sessionId = answer.sessionId;
    if (typeof sessionId !== 'string' || sessionId === '') {
      throw new UnexpectedResponse('start-session answered without a sessionId.');
    }
    const view = (answer.streaming as Json | undefined)?.webViewURL;
    return {
      sessionId,
      expiresIn: typeof answer.expiresIn === 'number' ? answer.expiresIn : undefined,
      balance: num(answer.balance),
      liveViewUrl: typeof view === 'string' && view !== '' ? view : undefined,
    };
  }

  /**
   * Answers the guardrail a task stopped at; the task resumes where it paused. `hide`: values to keep out of errors.
   * A send-message, which the API may hold ~50 s: the long timeout, or an answer the API took was reported unsent.
   */
  async answerGuardrail(sessionId: string, taskId: string, answer: string, hide: readonly string[] = []): Promise<void> {
    await this.call('send-message', 'POST', '/start/send-message', { sessionId, message: { actionType: 'guardrail', taskId, taskDetails: answer, newState: 'resume' } }, this.longCallTimeoutMs, [answer, ...hide]);
  }

  /** Stops the session's running task (the session stays open). */
  async stopTask(sessionId: string): Promise<void> {
    await this.call('send-message', 'POST', '/start/send-message', { sessionId, message: { actionType: 'state', newState: 'stop' } }, this.callTimeoutMs);
  }

  /**
   * Sends one task to a session. The API may hold the call ~50 s and answer with the finished task. The task's
   * credential references stay here; `credentials` (resolved from them, in order) go to the API, but for the 2FA
   * seeds that a `totp` rule of the task or of `run` names, and their values are redacted from the outcome and from
   * any error message, like the API key.
   */
  async sendTask(sessionId: string, task: WorkflowTask, credentials: readonly SiteCredentials[] = [], webhook?: Webhook, run?: RunGuardrails): Promise<TaskOutcome> {
    // Credential references and guardrail rules are the workflow's: only what they resolve to reaches the API.
    const { secrets: references, guardrails: _rules, ...fields } = task;
    const message: Json = { actionType: 'newTask', newState: 'start', ...fields };
    const sent = withoutTotpSeeds(credentials, references, [task.guardrails, run?.guardrails, ...(run?.tasks ?? []).map((t) => t.guardrails)]);
    if (sent.length > 0) message.secrets = sent;
    if (webhook) message.webhook = webhook;
    // The doorbell's auth is a credential too: an API that echoes it must not put it into a result or an error.
    const secretValues = [...credentials.flatMap((c) => Object.values(c.fields)), ...(webhook ? [webhook.auth] : [])];
    const answer = await this.call('send-message', 'POST', '/start/send-message', { sessionId, message }, this.longCallTimeoutMs, secretValues, true);
    // The agent may repeat what it typed in a result, a failure reason or a guardrail question.
    const outcome = this.normalize(answer, undefined, secretValues);
    if (outcome.kind === 'pending' && !outcome.taskId) {
      throw new UnexpectedResponse('send-message answered "pending" without a taskId, so the task cannot be polled.');
    }
    return outcome;
  }

  /** Reads a task's state (GET /task/{sessionId}/{taskId}). */
  async getTask(sessionId: string, taskId: string): Promise<TaskOutcome> {
    const path = `/task/${encodeURIComponent(sessionId)}/${encodeURIComponent(taskId)}`;
    const answer = await this.call('get-task', 'GET', path, undefined, this.callTimeoutMs, [], true);
    return this.normalize(answer, taskId);
  }

  /**
   * Normalizes a 2xx task answer with the API key and the task's credentials redacted from every string of it: an
   * API that echoes the key (in a failure reason, a guardrail question, the keys of an unknown answer) must not
   * put it into a result, an error or the execution history.
   */
  private normalize(answer: Json, knownTaskId: string | undefined, secretValues: readonly string[] = []): TaskOutcome {
    const hidden = [this.apiKey, ...secretValues];
    try {
      // A question or a reason is redacted before it is cut, which would otherwise leave a secret's first characters;
      // a result's data is never cut.
      const outcome = normalizeTaskAnswer(answer, knownTaskId, (text) => redactText(text, hidden));
      return outcome.kind === 'completed' ? redactOutcome(outcome, hidden) : outcome;
    } catch (err) {
      if (err instanceof UnexpectedResponse) throw new UnexpectedResponse(redactText(err.message, hidden), { status: err.status });
      throw err;
    }
  }

  /** Ends a session. Idempotent: a session that is already gone is reported, not thrown. */
  async terminateSession(sessionId: string): Promise<TerminateResult> {
    try {
      await this.call('terminate', 'POST', '/start/send-message', { sessionId, message: { actionType: 'state', newState: 'terminate' } }, this.callTimeoutMs);
      return { terminated: true };
    } catch (err) {
      if (err instanceof SessionExpired) return { terminated: false };
      // A 2xx without a JSON object (204, an empty or plain-text "ok") still means the API accepted the terminate.
      if (err instanceof UnexpectedResponse && err.status !== undefined && err.status >= 200 && err.status < 300) return { terminated: true };
      throw err;
    }
  }

  /** `answersTask`: the endpoint answers with a task's state (newTask, get-task), which may say `success: false`. */
  private async call(endpoint: Endpoint, method: 'GET' | 'POST', path: string, body: Json | undefined, timeoutMs: number, secretValues: readonly string[] = [], answersTask = false): Promise<Json> {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.callOnce(endpoint, method, path, body, timeoutMs, secretValues, answersTask);
      } catch (err) {
        // The key may have been rotated since it was read (it is cached for minutes): read it again, once.
        if (err instanceof Unauthorized && this.refreshApiKey && !refreshed) {
          refreshed = true;
          const fresh = await this.refreshApiKey();
          if (fresh !== this.apiKey) {
            this.apiKey = fresh;
            continue;
          }
        }
        const waitSeconds = err instanceof RateLimited ? (err.retryAfterSeconds ?? 1) : undefined;
        if (waitSeconds === undefined || attempt >= this.maxInlineRetries || waitSeconds > this.maxInlineRetryAfterSeconds) throw err;
        // Waiting it out must leave time for the call itself; otherwise the state machine's Retry waits instead.
        if (waitSeconds * 1000 + Math.min(timeoutMs, 5_000) > this.remainingMs()) throw err;
        await this.sleep(waitSeconds * 1000);
      }
    }
  }

  private async callOnce(endpoint: Endpoint, method: 'GET' | 'POST', path: string, body: Json | undefined, timeoutMs: number, secretValues: readonly string[], answersTask: boolean): Promise<Json> {
    let response: HttpAnswer;
    const remaining = this.remainingMs();
    if (remaining < 1_000) throw new ApiError(`${endpoint} was not called: the invocation has ${Math.max(0, Math.round(remaining))} ms left.`);
    timeoutMs = Math.min(timeoutMs, remaining);
    const { signal, release } = callSignal(timeoutMs, this.signal);
    try {
      response = await httpTransport.send({
        method,
        url: this.baseUrl + path,
        headers: {
          Authorization: `Bearer ${this.apiKey}`,
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (this.signal?.aborted) throw new ApiError(`${endpoint} was cancelled: the run is stopping.`);
      throw networkError(endpoint, err, timeoutMs);
    } finally {
      release();
    }
    const { status, text } = response;
    const ok = status >= 200 && status < 300;
    let parsed: unknown;
    let isJson = true;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      isJson = false;
    }
    const json = isJson && parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : undefined;
    // Error messages quote the API's own text; an API (or proxy) that echoes the key or a credential sent with the
    // request must not put it into an error.
    const redact = (text: string) => redactText(text, [this.apiKey, ...secretValues]);
    // A failed task may come back as a 2xx saying `success: false`: that is the task's answer (TaskFailed with its
    // reason), not a refused call; only a body that is no task answer is the API's error.
    const taskAnswer = answersTask && ok && json !== undefined && isTaskAnswer(json);
    if (!ok || (json?.success === false && !taskAnswer)) {
      throw httpError(endpoint, status, json, response.header('retry-after') ?? null, redact);
    }
    if (!json) {
      throw new UnexpectedResponse(`${endpoint} answered HTTP ${status} with ${isJson ? 'JSON that is not an object' : 'a body that is not JSON'} (${describeBody(redact(text))}).`, { status });
    }
    return json;
  }
}

/** A secret's name, whether a reference is its name or its ARN (partial, or complete with its 6-character suffix). */
function secretBaseName(reference: string): string {
  return siteSecretName(reference).replace(/-[A-Za-z0-9]{6}$/, '');
}

/**
 * The credentials to send, without the fields a `totp` rule names: a 2FA seed kept in the login's secret (as the
 * README lays it out) answers the code question from this side; the agent never needs it, so the API never gets it.
 * Each credential is matched to its secret by `references` (resolved in order); credentials that cannot be matched
 * lose every field a `totp` rule names, whatever its secret. One left with no field is not sent.
 */
function withoutTotpSeeds(credentials: readonly SiteCredentials[], references: readonly SiteCredentialRef[] | undefined, guardrails: ReadonlyArray<WorkflowTask['guardrails']>): SiteCredentials[] {
  const seeds = guardrails.flatMap((g) => g?.rules ?? []).flatMap((r) => (r.answerFromSecret?.totp ? [r.answerFromSecret] : []));
  if (seeds.length === 0) return [...credentials];
  const matched = references?.length === credentials.length && references.every((r, i) => r.match === credentials[i].match);
  return credentials
    .map((c, i) => {
      const isSeed = (field: string) => seeds.some((s) => s.field === field && (!matched || secretBaseName(s.secret) === secretBaseName(references[i].secret)));
      return { ...c, fields: Object.fromEntries(Object.entries(c.fields).filter(([field]) => !isSeed(field))) };
    })
    .filter((c) => Object.keys(c.fields).length > 0);
}

function describeBody(text: string): string {
  if (text === '') return 'empty';
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return `starts ${JSON.stringify(oneLine.slice(0, 60))}`;
}

/**
 * The signal of one call: aborted after `timeoutMs` (a TimeoutError) or when `stop` aborts, whichever comes first.
 * `release()` ends both once the call is over. (AbortSignal.any over AbortSignal.timeout costs five times the CPU,
 * and leaves each call's timer pending for its whole timeout: thousands of them in a long local run.)
 */
function callSignal(timeoutMs: number, stop?: AbortSignal): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`The call timed out after ${timeoutMs} ms.`, 'TimeoutError')), timeoutMs);
  const onStop = (): void => controller.abort(stop?.reason);
  if (stop?.aborted) onStop();
  else stop?.addEventListener('abort', onStop, { once: true });
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      stop?.removeEventListener('abort', onStop);
    },
  };
}

function networkError(endpoint: Endpoint, err: unknown, timeoutMs: number): WebrunError {
  const e = err as { name?: string; cause?: { code?: string }; code?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new ApiError(`${endpoint} got no answer within ${Math.round(timeoutMs / 1000)} s.`);
  }
  const code = e?.cause?.code ?? e?.code;
  // Refused or unresolvable: the request never reached the API, so repeating it cannot duplicate anything.
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new ServiceUnavailable(`${endpoint} could not reach the webrun API (${code}).`, { code });
  }
  return new ApiError(`${endpoint} failed on the network${code ? ` (${code})` : ''}.`, { code });
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

const CODE_ERRORS: Record<string, (msg: string, d: { status: number; code: string }) => WebrunError> = {
  INVALID_API_KEY: (m, d) => new Unauthorized(m, d),
  API_KEY_EXPIRED: (m, d) => new Unauthorized(m, d),
  UNAUTHORIZED: (m, d) => new Unauthorized(m, d),
  ACCOUNT_DEACTIVATED: (m, d) => new Unauthorized(m, d),
  INSUFFICIENT_BALANCE: (m, d) => new InsufficientBalance(m, d),
  RATE_LIMIT_EXCEEDED: (m, d) => new RateLimited(m, d),
  INSTANCE_UNAVAILABLE: (m, d) => new ServiceUnavailable(m, d),
  SESSION_NOT_FOUND: (m, d) => new SessionExpired(m, d),
  SESSION_EXPIRED: (m, d) => new SessionExpired(m, d),
  SESSION_LIMIT_REACHED: (m, d) => new SessionLimitReached(m, d),
  TASK_TIMEOUT: (m, d) => new TaskFailed(m, d),
  TASK_NOT_FOUND: (m, d) => new TaskFailed(m, d),
  TASK_ALREADY_RUNNING: (m, d) => new TaskFailed(m, d),
  ELEMENT_NOT_FOUND: (m, d) => new TaskFailed(m, d),
  NAVIGATION_TIMEOUT: (m, d) => new ApiError(m, d),
};

function httpError(endpoint: Endpoint, status: number, body: Json | undefined, retryAfterHeader: string | null, redact: (s: string) => string): WebrunError {
  const code = typeof body?.code === 'string' ? redact(body.code) : undefined;
  const rawText = typeof body?.error === 'string' ? body.error : typeof body?.message === 'string' ? body.message : undefined;
  const apiText = rawText === undefined ? undefined : redact(rawText);
  const message = `${endpoint} was refused with HTTP ${status}${code ? ` ${code}` : ''}${apiText ? `: ${apiText.slice(0, 300)}` : ''}.`;
  const details = { status, code };
  // Also a 429, but not a rate: the account's sessions are all in use until one ends ("Start session" waits longer).
  if (code === 'SESSION_LIMIT_REACHED') return new SessionLimitReached(message, details);
  if (status === 429 || code === 'RATE_LIMIT_EXCEEDED') {
    const retryAfterSeconds = parseRetryAfter(retryAfterHeader);
    return new RateLimited(retryAfterSeconds === undefined ? message : `${message.slice(0, -1)} (retry after ${retryAfterSeconds} s).`, { ...details, retryAfterSeconds });
  }
  if (code && CODE_ERRORS[code]) return CODE_ERRORS[code](message, { status, code });
  if (status === 400 || status === 422) return new BadRequest(message, details);
  if (status === 401 || status === 403) return new Unauthorized(message, details);
  if (status === 402) return new InsufficientBalance(message, details);
  // Before any session exists, a 404 cannot be a session that expired: the base URL names no webrun API.
  if ((status === 404 || status === 410) && endpoint === 'start-session') return new ConfigError(`${message.slice(0, -1)} (is the base URL the webrun API's?).`, details);
  if (status === 404 || status === 410) return new SessionExpired(message, details);
  if (status === 409) return new TaskFailed(message, details);
  if (status === 503) return new ServiceUnavailable(message, details);
  if (status >= 500 || status === 408) return new ApiError(message, details);
  return new UnexpectedResponse(message, details);
}

/**
 * Whether a `success: false` body is a task's answer rather than an API error: it has a known task shape (a failed
 * task's `status: "failed"` and `error`, say) and no error code the API documents (the code says more, and may be
 * one a retry cures), so `{ success: false, error, code }` stays the API's error.
 */
function isTaskAnswer(body: Json): boolean {
  if (typeof body.code === 'string' && Object.hasOwn(CODE_ERRORS, body.code)) return false;
  try {
    normalizeTaskAnswer(body);
    return true;
  } catch {
    return false;
  }
}

/** A guardrail question or a failure reason, redacted first (a cut must not leave the start of a secret), then cut. */
function bounded(text: string, redact: (text: string) => string): string {
  return clipped(redact(text), MAX_API_TEXT_CHARS);
}

/** `text` cut to at most `max` characters, the cut marked with "…". */
export function clipped(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - CUT_MARK.length)}${CUT_MARK}` : text;
}

/** Whether a key can go into an Authorization header (visible ASCII; HTTP trims the spaces around it). */
export function headerSafeKey(key: string): boolean {
  return /^[\x21-\x7e]+$/.test(key.trim());
}

const PENDING_STATES = new Set(['pending', 'active', 'running', 'started', 'queued']);
const COMPLETED_STATES = new Set(['complete', 'completed', 'task_completed', 'success', 'succeeded']);
const FAILED_STATES = new Set(['failed', 'error', 'task_failed']);

function asObject(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

/** The first value that is a number, or a decimal number written as a string ("0.5"): a budget must not miss a cost. */
function num(...values: unknown[]): number | undefined {
  for (const v of values) {
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  }
  return undefined;
}

/** Token counts and cost, from `usage` or from `data`, under either naming the docs use. */
export function readUsage(...sources: Array<Json | undefined>): Usage | undefined {
  const usage: Usage = {};
  for (const s of sources) {
    if (!s) continue;
    usage.inputTokens ??= num(s.inputTokens, s.prompt_tokens, s.input_tokens);
    usage.outputTokens ??= num(s.outputTokens, s.completion_tokens, s.output_tokens);
    usage.cost ??= num(s.cost);
  }
  return Object.values(usage).some((v) => v !== undefined) ? usage : undefined;
}

/**
 * Turns any documented task answer into a `TaskOutcome`:
 * top-level `{ type, data }` (poll), wrapped `{ result: { type, data } }` (send-message), `status: "complete"`,
 * `pending: true` or `status: "pending"/"active"`, guardrail triggers (by `type` or `status`) and `status: "failed"`
 * with `error`.
 * `redact` is applied to the question or reason before it is cut to MAX_API_TEXT_CHARS.
 */
export function normalizeTaskAnswer(answer: Json, knownTaskId?: string, redact: (text: string) => string = (text) => text): TaskOutcome {
  const result = asObject(answer.result);
  const inner = result ?? answer;
  const type = typeof inner.type === 'string' ? inner.type : typeof answer.type === 'string' ? answer.type : undefined;
  const status = [answer.status, result?.status].find((s): s is string => typeof s === 'string')?.toLowerCase();
  // Documented as an object ({ message, ... }); a completed answer whose data is plain text keeps it as its message,
  // and one whose data is a list, a number or a yes/no keeps it as its output, as a structured answer has it.
  const text = [inner.data, answer.data].find((d): d is string => typeof d === 'string' && d !== '');
  const bare = [inner.data, answer.data].find((d) => d !== undefined && d !== null && typeof d !== 'string' && asObject(d) === undefined);
  const data = asObject(inner.data) ?? asObject(answer.data) ?? (text !== undefined ? { message: text } : bare !== undefined ? { output: bare } : undefined);
  const taskId = [answer.taskId, result?.taskId, knownTaskId].find((t): t is string => typeof t === 'string' && t !== '');
  const usage = readUsage(asObject(answer.usage), asObject(result?.usage), data);

  // The docs name guardrail_trigger a task state too: a status says it as well as a type does.
  if (type === 'guardrail_trigger' || status === 'guardrail_trigger') {
    const question = [data?.value, data?.message, data?.question].find((q): q is string => typeof q === 'string' && q !== '');
    return { kind: 'guardrail', taskId, question: bounded(question ?? 'The agent needs human input.', redact), guardrailType: typeof data?.type === 'string' ? data.type : undefined };
  }
  if (type === 'task_failed' || type === 'failed' || (status !== undefined && FAILED_STATES.has(status))) {
    const reason = [answer.error, result?.error, data?.message, data?.error].find((r): r is string => typeof r === 'string' && r !== '');
    return { kind: 'failed', taskId, reason: bounded(reason ?? 'The task failed without a reason.', redact) };
  }
  if (type === 'task_completed' || (status !== undefined && COMPLETED_STATES.has(status) && (data !== undefined || result !== undefined))) {
    return { kind: 'completed', taskId, data: (data ?? {}) as TaskData, usage };
  }
  if (answer.pending === true || (status !== undefined && PENDING_STATES.has(status)) || type === 'started' || type === 'running') {
    if (!taskId) throw new UnexpectedResponse('A pending task answer carried no taskId.');
    return { kind: 'pending', taskId, usage };
  }
  const keys = Object.keys(answer).slice(0, 8).join(', ');
  throw new UnexpectedResponse(`The task answer had none of the known shapes (keys: ${keys || 'none'}).`);
}
