/** A small typed client of the emulator for its tests: loopback only, one emulator per test, closed afterwards. */
import { afterAll, expect } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../../local/emulator';

export const KEY = 'test-key-7f3a9c';

/** A JSON object answer (`{}` when the body was not a JSON object). */
export type Body = Record<string, unknown>;

export interface Res {
  status: number;
  headers: Headers;
  text: string;
  /** False when the body was not JSON. */
  parsed: boolean;
  json: Body;
}

export function isBody(v: unknown): v is Body {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value as a string, failing the test when it is not one. */
export function str(v: unknown): string {
  expect(typeof v, `expected a string, got ${JSON.stringify(v)}`).toBe('string');
  return v as string;
}

/** The value as an object, failing the test when it is not one. */
export function obj(v: unknown): Body {
  expect(isBody(v), `expected an object, got ${JSON.stringify(v)}`).toBe(true);
  return v as Body;
}

export interface CallOptions {
  /** `null`: no Authorization header. @default `Bearer ${KEY}` */
  auth?: string | null;
  /** Sent instead of the JSON of `body`. */
  raw?: string;
}

export class Client {
  constructor(readonly emu: Emulator) {}

  async call(method: string, p: string, body?: unknown, opts: CallOptions = {}): Promise<Res> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const auth = opts.auth === undefined ? `Bearer ${KEY}` : opts.auth;
    if (auth !== null) headers.authorization = auth;
    const res = await fetch(`${this.emu.url}${p}`, { method, headers, body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    const text = await res.text();
    let json: unknown;
    let parsed = true;
    try {
      json = JSON.parse(text);
    } catch {
      parsed = false;
    }
    return { status: res.status, headers: res.headers, text, parsed, json: isBody(json) ? json : {} };
  }

  startSession(body: unknown = { mode: 'default' }): Promise<Res> {
    return this.call('POST', '/start/start-session', body);
  }

  newTask(sessionId: string, taskDetails: string, extra: Record<string, unknown> = {}): Promise<Res> {
    return this.send(sessionId, { actionType: 'newTask', newState: 'start', taskDetails, ...extra });
  }

  send(sessionId: string, message: unknown): Promise<Res> {
    return this.call('POST', '/start/send-message', { sessionId, message });
  }

  /** A guardrail answer: `resume` with the answer, or `stop`. */
  answer(sessionId: string, newState: 'resume' | 'stop', answer: string): Promise<Res> {
    return this.send(sessionId, { actionType: 'guardrail', taskDetails: answer, newState });
  }

  terminate(sessionId: string): Promise<Res> {
    return this.send(sessionId, { actionType: 'state', newState: 'terminate' });
  }

  poll(sessionId: string, taskId: string): Promise<Res> {
    return this.call('GET', `/task/${sessionId}/${taskId}`);
  }

  async openSession(): Promise<string> {
    const r = await this.startSession();
    expect(r.status).toBe(200);
    return str(r.json.sessionId);
  }

  /** Sends a task and returns its id. */
  async task(sessionId: string, taskDetails: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await this.newTask(sessionId, taskDetails, extra);
    expect(r.status, r.text).toBe(200);
    return str(r.json.taskId);
  }
}

/**
 * An emulator for each test that asks for one, all closed after the file's tests (not after each test, so that the
 * tests may run concurrently); `start` defaults to the test key.
 */
export function emulatorPerTest(): { start(opts?: EmulatorOptions): Promise<Client> } {
  const started: Emulator[] = [];
  afterAll(async () => {
    await Promise.all(started.splice(0).map((e) => e.close()));
  });
  return {
    async start(opts: EmulatorOptions = {}): Promise<Client> {
      const emu = await startEmulator({ apiKey: KEY, ...opts });
      started.push(emu);
      return new Client(emu);
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check()` is true, checking every 10 ms; fails after `timeoutMs` (generous: only slow machines need it). */
export async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
