/**
 * HTTP on 127.0.0.1: routing, Bearer auth (constant-time, the key kept only as a digest), injected faults, the
 * request ledger and log, and the `/__emulator/*` control endpoints (no auth, never recorded).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { TooDeep, type Api } from './api';
import type { Doorbells } from './doorbell';
import { faultAction, type FaultBook } from './faults';
import type { Model } from './model';
import { apiError, badRequest, ok, type Reply } from './replies';
import type { Endpoint, Ledger, RequestRecord } from './types';
import { idleLonger, isObject, type Timers } from './util';

const MAX_BODY_BYTES = 1024 * 1024;

type AuthState = 'missing' | 'invalid' | 'valid';
type ControlName = 'ledger' | 'tasks' | 'faults' | 'reset' | 'doorbell';
type ApiEndpoint = 'start' | 'send' | 'run-task' | 'poll';

type Route =
  | { kind: 'root' }
  | { kind: 'control'; name: ControlName }
  | { kind: 'api'; endpoint: ApiEndpoint; sessionId?: string; taskId?: string }
  | { kind: 'not-found' }
  | { kind: 'method' };

const CONTROL: Readonly<Record<string, { method: string; name: ControlName }>> = {
  '/__emulator/ledger': { method: 'GET', name: 'ledger' },
  '/__emulator/tasks': { method: 'POST', name: 'tasks' },
  '/__emulator/faults': { method: 'POST', name: 'faults' },
  '/__emulator/reset': { method: 'POST', name: 'reset' },
  '/__emulator/doorbell': { method: 'POST', name: 'doorbell' },
};

const API: Readonly<Record<string, ApiEndpoint>> = {
  '/start/start-session': 'start',
  '/start/send-message': 'send',
  '/start/run-task': 'run-task',
};

function route(method: string, path: string): Route {
  const known = (want: string, r: Route): Route => (method === want ? r : { kind: 'method' });
  if (path === '/') return known('GET', { kind: 'root' });
  const control = CONTROL[path];
  if (control) return known(control.method, { kind: 'control', name: control.name });
  const endpoint = API[path];
  if (endpoint) return known('POST', { kind: 'api', endpoint });
  const m = /^\/task\/([^/]+)\/([^/]+)\/?$/.exec(path);
  if (!m) return { kind: 'not-found' };
  try {
    return known('GET', { kind: 'api', endpoint: 'poll', sessionId: decodeURIComponent(m[1]), taskId: decodeURIComponent(m[2]) });
  } catch {
    return { kind: 'not-found' };
  }
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

function write(res: ServerResponse, status: number, text: string, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export interface ServerDeps {
  api: Api;
  model: Model;
  faults: FaultBook;
  doorbells: Doorbells;
  timers: Timers;
  /** Only `Bearer <apiKey>` is accepted when set. */
  apiKey?: string;
  ledger(): Ledger;
  reset(): void;
  log?: (line: string) => void;
}

export class EmulatorServer {
  readonly http: Server;
  /** The API requests answered so far (the ledger's `requests`). */
  requests: RequestRecord[] = [];
  private readonly keyDigest?: Buffer;

  constructor(private readonly deps: ServerDeps) {
    // Only a digest of the key is kept, for a constant-time comparison.
    this.keyDigest = deps.apiKey === undefined ? undefined : createHash('sha256').update(deps.apiKey).digest();
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        deps.log?.(`internal error: ${e instanceof Error ? e.message : String(e)}`);
        write(res, 500, JSON.stringify(apiError(500, 'INTERNAL_ERROR').body), {});
      });
    });
    idleLonger(this.http);
  }

  private authState(header: string | undefined): AuthState {
    if (header === undefined || header === '') return 'missing';
    const m = /^Bearer[ \t]+(\S.*)$/i.exec(header.trim());
    if (!m) return 'invalid';
    if (!this.keyDigest) return 'valid';
    const got = createHash('sha256').update(m[1].trim()).digest();
    return timingSafeEqual(got, this.keyDigest) ? 'valid' : 'invalid';
  }

  private async control(name: ControlName, body: unknown): Promise<Reply> {
    const list = (): unknown[] => (Array.isArray(body) ? body : [body]);
    try {
      switch (name) {
        case 'ledger':
          return { status: 200, body: this.deps.ledger() };
        case 'reset':
          this.deps.reset();
          return ok({ ok: true });
        case 'tasks':
          return ok({ ok: true, queued: this.deps.model.enqueue(list()) });
        case 'faults':
          return ok({ ok: true, faults: this.deps.faults.add(list()) });
        case 'doorbell':
          return ok({ ok: true, doorbell: await this.deps.doorbells.forge(body) });
      }
    } catch (e) {
      return badRequest(e instanceof Error ? e.message : String(e));
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?')[0] || '/';
    let entry: RequestRecord | undefined;
    const finishLog = (status: number): void => {
      if (entry) {
        entry.status = status;
        this.requests.push(entry);
      }
      this.deps.log?.(`${method} ${path} ${status === 0 ? 'hangup' : status} ${Date.now() - started}ms${entry?.fault ? ' (fault)' : ''}`);
    };
    const answer = (reply: Reply): void => {
      write(res, reply.status, JSON.stringify(reply.body), reply.headers ?? {});
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
    // The ledger's requests are the API's: an API request answered 413 is one; a control path, whatever the method, never is.
    if (r.kind === 'api') entry = { method, path, status: 0, authorization: this.authState(req.headers.authorization), endpoint: r.endpoint };
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
      const reply = await this.control(r.name, body);
      if (this.deps.timers.closed) return;
      return answer(reply);
    }
    if (r.kind !== 'api') {
      if (!path.startsWith('/__emulator')) entry = { method, path, status: 0 };
      return answer(
        r.kind === 'method' ? apiError(405, 'METHOD_NOT_ALLOWED', `Method ${method} not allowed on ${path}`) : apiError(404, 'NOT_FOUND', `No route for ${method} ${path}`),
      );
    }

    // An API request: classify, apply a fault if one matches, then auth, then the handler.
    let endpoint: Exclude<Endpoint, 'any'> = r.endpoint;
    const b = isObject(body) ? body : undefined;
    if (endpoint === 'send' && isObject(b?.message) && b.message.actionType === 'state' && b.message.newState === 'terminate') endpoint = 'terminate';
    const auth = this.authState(req.headers.authorization);
    const sessionId = r.sessionId ?? (typeof b?.sessionId === 'string' ? b.sessionId : undefined);
    entry = { method, path, status: 0, authorization: auth, endpoint, ...(sessionId !== undefined ? { sessionId } : {}) };

    const fault = this.deps.faults.pick(endpoint);
    if (fault) {
      entry.fault = true;
      if (fault.latencyMs) await this.deps.timers.sleep(fault.latencyMs);
      if (this.deps.timers.closed) return;
      const action = faultAction(fault);
      switch (action.kind) {
        case 'hangup':
          finishLog(0);
          req.socket.destroy();
          return;
        case 'raw':
          write(res, action.status, action.body, action.headers);
          return finishLog(action.status);
        case 'reply':
          return answer(action.reply);
        case 'pass':
          break;
      }
    }

    if (auth !== 'valid') return answer(apiError(401, 'INVALID_API_KEY', 'Invalid API key'));
    if (method === 'POST' && !parsed) return answer(badRequest('Request body must be valid JSON'));

    const { api } = this.deps;
    try {
      switch (r.endpoint) {
        case 'start':
          return answer(api.start(body));
        case 'send': {
          const reply = await api.send(body);
          if (this.deps.timers.closed) return;
          return answer(reply);
        }
        case 'run-task':
          return answer(api.runTask(body));
        case 'poll':
          return answer(api.poll(r.sessionId ?? '', r.taskId ?? ''));
      }
    } catch (err) {
      if (err instanceof TooDeep) return answer(badRequest('Request body is nested too deeply'));
      // Recorded with the other API requests, as what the client saw.
      this.deps.log?.(`internal error: ${err instanceof Error ? err.message : String(err)}`);
      return answer(apiError(500, 'INTERNAL_ERROR'));
    }
  }
}
