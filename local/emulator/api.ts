/**
 * The webrun endpoints: request validation (400 INVALID_REQUEST naming the field), session and task errors (404,
 * 409, 429 SESSION_LIMIT_REACHED), and the answers of start-session, send-message, run-task and GET /task.
 */
import { finalAnswer, pendingPollAnswer, pendingSendAnswer, startAnswer } from './answers';
import { recordedUrl } from './doorbell';
import { MAX_TASK_MS, type Model, type Session, type Task, type Webhook } from './model';
import { apiError, badRequest, ok, type Reply } from './replies';
import { isObject, shorten, type Json, type Timers } from './util';

const OUTPUT_TYPES = ['text', 'structured_json', 'structured_csv'];
const SUBMITTED_DATA = ['ai_response', 'full_response', 'just_ping'];

function checkMaxDuration(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > MAX_TASK_MS) return `${name} must be a number from 1 to ${MAX_TASK_MS}`;
  return undefined;
}

function checkOutputType(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !OUTPUT_TYPES.includes(v)) return `${name} must be one of ${OUTPUT_TYPES.join(', ')}`;
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

/** `webhook: { name?, url, auth?, submittedData? }`; http URLs are accepted too (a local receiver). */
function checkWebhook(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) return `${field} must be an object`;
  let url: URL | undefined;
  try {
    url = typeof value.url === 'string' ? new URL(value.url) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return `${field}.url must be an http(s) URL`;
  for (const k of ['name', 'auth'] as const) {
    if (value[k] !== undefined && typeof value[k] !== 'string') return `${field}.${k} must be a string`;
  }
  if (value.submittedData !== undefined && !SUBMITTED_DATA.includes(value.submittedData as string)) {
    return `${field}.submittedData must be one of ${SUBMITTED_DATA.join(', ')}`;
  }
  return undefined;
}

function checkTaskFields(m: Json, prefix: string): string | undefined {
  if (typeof m.taskDetails !== 'string' || m.taskDetails.trim() === '') return `${prefix}taskDetails must be a non-empty string`;
  return (
    checkMaxDuration(m.maxDuration, `${prefix}maxDuration`) ??
    checkOutputType(m.outputType, `${prefix}outputType`) ??
    checkSecrets(m.secrets, `${prefix}secrets`) ??
    checkWebhook(m.webhook, `${prefix}webhook`)
  );
}

/**
 * A copy for the ledger: `webhook.auth` redacted and `webhook.url` without its query (at the top level or in
 * `initialTask`), as doorbell records keep it.
 */
function recorded(body: Json): Json {
  // The body was parsed from JSON: nested too deep to copy, it is refused as any bad request is (TooDeep → 400).
  let copy: Json;
  try {
    copy = structuredClone(body);
  } catch (err) {
    if (err instanceof RangeError) throw new TooDeep();
    throw err;
  }
  for (const holder of [copy, copy.initialTask]) {
    if (!isObject(holder) || !isObject(holder.webhook)) continue;
    if (holder.webhook.auth !== undefined) holder.webhook.auth = '[redacted]';
    if (typeof holder.webhook.url === 'string') holder.webhook.url = recordedUrl(holder.webhook.url);
  }
  return copy;
}

/** A request body nested too deeply to keep in the ledger: answered 400, not 500 (which a client would retry). */
export class TooDeep extends Error {}

export interface ApiConfig {
  sendHoldMs: number;
  balance: number;
  maxSessions?: number;
  /** The emulator's base URL (known once it listens). */
  baseUrl(): string;
}

export class Api {
  constructor(
    private readonly model: Model,
    private readonly timers: Timers,
    private readonly cfg: ApiConfig,
  ) {}

  start(body: unknown): Reply {
    if (!isObject(body)) return badRequest('Request body must be a JSON object');
    if (body.mode !== undefined && body.mode !== 'default') return badRequest('mode must be "default"');
    if (body.profileId !== undefined && body.profileId !== null && typeof body.profileId !== 'string') return badRequest('profileId must be a string');
    let initialPrompt = '';
    if (body.initialTask !== undefined && body.initialTask !== null) {
      const it = body.initialTask;
      if (!isObject(it)) return badRequest('initialTask must be an object');
      const err =
        checkMaxDuration(it.maxDuration, 'initialTask.maxDuration') ??
        checkOutputType(it.outputType, 'initialTask.outputType') ??
        checkWebhook(it.webhook, 'initialTask.webhook') ??
        checkSecrets(it.secrets, 'initialTask.secrets');
      if (err) return badRequest(err);
      if (it.taskDetails !== undefined && typeof it.taskDetails !== 'string') return badRequest('initialTask.taskDetails must be a string');
      initialPrompt = typeof it.taskDetails === 'string' ? it.taskDetails : '';
    }
    if (this.model.atSessionLimit()) return this.sessionLimit();
    const s = this.model.createSession(recorded(body));
    return ok(startAnswer(s.id, this.cfg.baseUrl(), initialPrompt, this.cfg.balance));
  }

  async send(body: unknown): Promise<Reply> {
    if (!isObject(body)) return badRequest('Request body must be a JSON object');
    if (typeof body.sessionId !== 'string' || body.sessionId === '') return badRequest('sessionId is required');
    const m = body.message;
    if (!isObject(m)) return badRequest('message must be an object');
    if (typeof m.actionType !== 'string') return badRequest('message.actionType is required');
    const sessionId = body.sessionId;
    const s = this.model.lookup(sessionId);

    if (m.actionType === 'state' && m.newState === 'terminate') {
      if (!s) return closedSessionError(undefined);
      s.rec.terminateRequests += 1;
      if (!s.isOpen()) return closedSessionError(s);
      this.model.endSession(s, 'request');
      return ok({ success: true, sessionId, message: 'Session terminated' });
    }
    if (!s || !s.isOpen()) return closedSessionError(s);

    switch (m.actionType) {
      case 'newTask':
        return this.newTask(s, m);
      case 'state': {
        if (m.newState === 'pause' || m.newState === 'resume') return ok({ success: true, sessionId, message: `Session ${m.newState}d` });
        if (m.newState === 'stop') {
          for (const t of s.tasks.values()) if (t.rec.status === 'pending' || t.rec.status === 'guardrail') this.model.cancel(t);
          return ok({ success: true, sessionId, message: 'Task stopped' });
        }
        return badRequest('message.newState must be one of pause, resume, stop, terminate');
      }
      case 'guardrail': {
        const waiting = [...s.tasks.values()].filter((t) => t.rec.status === 'guardrail');
        const t = typeof m.taskId === 'string' ? waiting.find((x) => x.id === m.taskId) : waiting[waiting.length - 1];
        if (!t) return badRequest('No task is waiting for a guardrail answer');
        if (m.newState !== 'resume' && m.newState !== 'stop') return badRequest('message.newState must be "resume" or "stop" for guardrail');
        // One task runs at a time in a session: resuming this one while another runs is refused as a new one is.
        const running = s.pending();
        if (m.newState === 'resume' && running) return apiError(409, 'TASK_ALREADY_RUNNING', `Task ${running.id} is still running in this session`);
        this.model.answerGuardrail(t, typeof m.taskDetails === 'string' ? m.taskDetails : '', m.newState);
        if (m.newState === 'stop') return ok({ success: true, sessionId, taskId: t.id, message: 'Task stopped' });
        // A resume is a send-message too: held like a newTask, so a client's timeout meets the real ~50 s hold.
        return this.held(t);
      }
      case 'interaction':
        return ok({ success: true, sessionId, message: 'Interaction received' });
      default:
        return badRequest(`Unknown actionType: ${shorten(m.actionType, 40)}`);
    }
  }

  poll(sessionId: string, taskId: string): Reply {
    const s = this.model.lookup(sessionId);
    if (!s || !s.isOpen()) return closedSessionError(s);
    const t = s.tasks.get(taskId);
    if (!t) return apiError(404, 'TASK_NOT_FOUND', 'Task not found');
    this.model.poll(t);
    const now = Date.now();
    return ok(t.rec.status === 'pending' ? pendingPollAnswer(t, now) : finalAnswer(t, 'poll', now));
  }

  runTask(body: unknown): Reply {
    if (!isObject(body)) return badRequest('Request body must be a JSON object');
    const err = checkTaskFields(body, '');
    if (err) return badRequest(err);
    if (this.model.atSessionLimit()) return this.sessionLimit();
    const s = this.model.createSession(recorded(body));
    const t = this.model.runTask(s, body.taskDetails as string, recorded(body), body);
    this.model.endSession(s, 'self');
    return ok(finalAnswer(t, 'send', Date.now()));
  }

  private async newTask(s: Session, m: Json): Promise<Reply> {
    if (m.newState !== 'start') return badRequest('message.newState must be "start" for newTask');
    const err = checkTaskFields(m, 'message.');
    if (err) return badRequest(err);
    const running = s.pending();
    if (running) return apiError(409, 'TASK_ALREADY_RUNNING', `Task ${running.id} is still running in this session`);
    const webhook: Webhook | undefined = isObject(m.webhook)
      ? { url: m.webhook.url as string, ...(typeof m.webhook.auth === 'string' ? { auth: m.webhook.auth } : {}) }
      : undefined;
    const t = this.model.sendTask(s, m.taskDetails as string, recorded(m), m, webhook);
    return this.held(t);
  }

  /**
   * The send-message answer for a task just sent or resumed: held like the real API (~50 s, here `sendHoldMs`);
   * a task that stops within the hold (or times out, its maxDuration passing) is answered in this response.
   */
  private async held(t: Task): Promise<Reply> {
    if (t.rec.status === 'pending' && this.cfg.sendHoldMs > 0) {
      const until = Math.min(t.nextStop() !== 'stuck' && t.pendingPolls === 0 ? t.readyAt : Infinity, t.deadline);
      const wait = until - Date.now();
      await this.timers.sleep(Math.min(wait, this.cfg.sendHoldMs));
      if (wait <= this.cfg.sendHoldMs) {
        // A timer can fire a millisecond before Date.now() reaches the stop (and again for the rest, on a busy
        // machine): wait out the rest until it has passed, then answer inline.
        for (let rest = until - Date.now(); rest > 0 && !this.timers.closed; rest = until - Date.now()) await this.timers.sleep(rest);
        this.model.stopIfReady(t);
      }
    }
    const now = Date.now();
    return ok(t.rec.status === 'pending' ? pendingSendAnswer(t, this.pollUrl(t), now) : finalAnswer(t, 'send', now));
  }

  private pollUrl(t: Task): string {
    return `${this.cfg.baseUrl()}/task/${t.sessionId}/${t.id}`;
  }

  private sessionLimit(): Reply {
    return apiError(429, 'SESSION_LIMIT_REACHED', `Session limit reached: ${this.cfg.maxSessions ?? 0} sessions are open; terminate one first`);
  }
}

function closedSessionError(s: Session | undefined): Reply {
  if (s?.rec.expiredAt !== undefined) return apiError(404, 'SESSION_EXPIRED', 'Session expired after inactivity');
  if (s) return apiError(404, 'SESSION_NOT_FOUND', 'Session not found or already terminated');
  return apiError(404, 'SESSION_NOT_FOUND', 'Session not found');
}
