/**
 * Webhook doorbells (DESIGN.md "Completion by webhook, polling as the fallback"): when a task sent with
 * `webhook: { url, auth }` stops on its own, `POST <url>` with `{ type, sessionId, taskId }` and
 * `Authorization: Bearer <auth>`, as scripted (drop, delay, duplicate, early), plus forged bells for tests of a
 * receiver. Loopback URLs only; every bell is recorded, never its auth or headers.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { DoorbellRecord, DoorbellScript, DoorbellType, ForgedDoorbell } from './types';
import { isObject, nonNegInt, onlyFields, timerMs, Timers } from './util';

/** A bell that gets no answer within this time is recorded as an error. */
const DOORBELL_TIMEOUT_MS = 5000;

export function validateDoorbellScript(v: unknown, name: string): DoorbellScript {
  if (!isObject(v)) throw new TypeError(`${name} must be an object`);
  onlyFields(v, ['drop', 'delayMs', 'duplicate', 'early'], name);
  if (v.drop !== undefined && typeof v.drop !== 'boolean') throw new TypeError(`${name}.drop must be a boolean`);
  timerMs(v.delayMs, `${name}.delayMs`);
  if (v.duplicate !== undefined && (nonNegInt(v.duplicate, `${name}.duplicate`) ?? 0) < 1) {
    throw new TypeError(`${name}.duplicate must be at least 1 (use drop for none)`);
  }
  if (v.early !== undefined && typeof v.early !== 'boolean') timerMs(v.early, `${name}.early`);
  return { ...(v as DoorbellScript) };
}

/** localhost, 127.0.0.0/8, ::1 and IPv4-mapped 127.x: the only hosts a doorbell may ring. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(h) || /^::ffff:127\./.test(h);
  return false;
}

/** What the ledger keeps of a URL: origin and path, no credentials, query or fragment. */
export function recordedUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function validateForgedDoorbell(v: unknown): ForgedDoorbell {
  if (!isObject(v)) throw new TypeError('a doorbell must be an object');
  onlyFields(v, ['url', 'method', 'body', 'headers'], 'a doorbell');
  if (typeof v.url !== 'string' || v.url === '') throw new TypeError('url must be a non-empty string');
  if (v.method !== undefined && (typeof v.method !== 'string' || !/^[A-Z]+$/.test(v.method))) throw new TypeError('method must be an upper-case HTTP method');
  if (v.headers !== undefined && (!isObject(v.headers) || !Object.values(v.headers).every((h) => typeof h === 'string'))) {
    throw new TypeError('headers must be an object of strings');
  }
  return { ...(v as unknown as ForgedDoorbell) };
}

/** Where a task's bells ring. */
export interface BellTarget {
  url: string;
  auth?: string;
}

export interface BellIds {
  sessionId: string;
  taskId: string;
}

interface Outgoing {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

export class Doorbells {
  private records: DoorbellRecord[] = [];
  private readonly timers = new Timers();
  private readonly inFlight = new Set<AbortController>();
  private busy = 0;
  private waiters: Array<() => void> = [];
  /** Bumped by reset(): bells of an earlier generation update only their orphaned records. */
  private generation = 0;

  constructor(private readonly log?: (line: string) => void) {}

  /** The bells for a task that stopped on its own. */
  taskEnded(target: BellTarget, ids: BellIds, type: DoorbellType, script: DoorbellScript): void {
    const base = { kind: 'task' as const, ...ids, type, url: recordedUrl(target.url) };
    if (script.drop) {
      this.records.push({ ...base, at: Date.now(), state: 'dropped' });
      this.log?.(`doorbell ${type} ${base.url} dropped`);
      return;
    }
    const delay = script.delayMs ?? 0;
    for (let i = 0; i < (script.duplicate ?? 1); i++) this.schedule({ ...base, at: Date.now() + delay, state: 'scheduled' }, delay, taskBell(target, ids, type));
  }

  /** A scripted bell before the task has ended: right URL and auth, `type: "task_completed"`. */
  early(target: BellTarget, ids: BellIds, delayMs: number): void {
    const type = 'task_completed';
    this.schedule({ kind: 'early', ...ids, type, url: recordedUrl(target.url), at: Date.now() + delayMs, state: 'scheduled' }, delayMs, taskBell(target, ids, type));
  }

  /** Rings an arbitrary bell now; resolves with its record once answered, refused or failed. */
  async forge(bell: unknown): Promise<DoorbellRecord> {
    const b = validateForgedDoorbell(bell);
    const headers: Record<string, string> = { ...b.headers };
    const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
    const body = typeof b.body === 'string' ? b.body : JSON.stringify(b.body ?? {});
    if (!hasType) headers['content-type'] = typeof b.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    const rec: DoorbellRecord = { kind: 'forged', url: recordedUrl(b.url), at: Date.now(), state: 'scheduled' };
    if (isObject(b.body)) {
      if (typeof b.body.sessionId === 'string') rec.sessionId = b.body.sessionId;
      if (typeof b.body.taskId === 'string') rec.taskId = b.body.taskId;
      if (b.body.type === 'task_completed' || b.body.type === 'guardrail_trigger' || b.body.type === 'failed') rec.type = b.body.type;
    }
    this.records.push(rec);
    this.busy += 1;
    await this.ring(rec, { url: b.url, method: b.method ?? 'POST', headers, body }, this.generation);
    return { ...rec };
  }

  list(): DoorbellRecord[] {
    return this.records.map((r) => ({ ...r }));
  }

  settled(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Forgets every record; cancels bells not yet rung and aborts those in flight. */
  reset(): void {
    this.generation += 1;
    this.timers.cancelAll();
    this.abortAll();
    this.records = [];
    this.busy = 0;
    this.wake();
  }

  close(): void {
    this.generation += 1;
    this.timers.close();
    this.abortAll();
    this.busy = 0;
    this.wake();
  }

  private abortAll(): void {
    for (const ac of this.inFlight) ac.abort();
    this.inFlight.clear();
  }

  private wake(): void {
    if (this.busy > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private schedule(rec: DoorbellRecord, delayMs: number, out: Outgoing): void {
    if (this.timers.closed) return;
    this.records.push(rec);
    this.busy += 1;
    const generation = this.generation;
    this.timers.after(delayMs, () => void this.ring(rec, out, generation));
  }

  /** Sends one bell and records how it went. Never throws. */
  private async ring(rec: DoorbellRecord, out: Outgoing, generation: number): Promise<void> {
    try {
      let url: URL | undefined;
      try {
        url = new URL(out.url);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        Object.assign(rec, { state: 'refused', error: 'not an http(s) URL' });
      } else if (!isLoopbackHost(url.hostname)) {
        Object.assign(rec, { state: 'refused', error: `${url.hostname} is not a loopback host` });
      } else {
        rec.state = 'ringing';
        rec.at = Date.now();
        const result = await this.post(url, out);
        Object.assign(rec, result);
      }
      this.log?.(`doorbell ${rec.type ?? rec.kind} ${rec.url} ${rec.status ?? rec.state}${rec.error ? ` (${rec.error})` : ''}`);
    } finally {
      if (generation === this.generation) {
        this.busy -= 1;
        this.wake();
      }
    }
  }

  private post(url: URL, out: Outgoing): Promise<Pick<DoorbellRecord, 'state' | 'status' | 'error'>> {
    return new Promise((resolve) => {
      const ac = new AbortController();
      this.inFlight.add(ac);
      let done = false;
      const finish = (r: Pick<DoorbellRecord, 'state' | 'status' | 'error'>): void => {
        if (done) return;
        done = true;
        this.inFlight.delete(ac);
        resolve(r);
      };
      const headers = { 'user-agent': 'webrun-emulator', 'content-length': String(Buffer.byteLength(out.body)), ...out.headers };
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      try {
        const req = send(url, { method: out.method, headers, agent: false, signal: ac.signal, timeout: DOORBELL_TIMEOUT_MS }, (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          res.resume();
          res.on('end', () => finish({ state: 'answered', status }));
          res.on('error', () => finish({ state: 'answered', status }));
        });
        req.on('timeout', () => req.destroy(new Error(`no answer within ${DOORBELL_TIMEOUT_MS} ms`)));
        req.on('error', (e: Error) => finish({ state: 'error', error: ac.signal.aborted ? 'aborted' : e.message }));
        req.end(out.body);
      } catch (e) {
        // e.g. a header value with a line break: say which check failed, never the value.
        const code = isObject(e) && typeof e.code === 'string' ? e.code : 'invalid request';
        finish({ state: 'error', error: `not sent: ${code}` });
      }
    });
  }
}

function taskBell(target: BellTarget, ids: BellIds, type: DoorbellType): Outgoing {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.auth) headers.authorization = `Bearer ${target.auth}`;
  return { url: target.url, method: 'POST', headers, body: JSON.stringify({ type, sessionId: ids.sessionId, taskId: ids.taskId }) };
}
