/** Small helpers shared by the emulator's modules, and the timers that `close()` and `reset()` cancel. */
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** 12 hex characters, like the vendor's session and task ids. */
export function newId(): string {
  return randomBytes(6).toString('hex');
}

export function nonNegInt(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new TypeError(`${name} must be a non-negative integer`);
  return v;
}

/** The longest a Node.js timer waits (about 24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration in milliseconds a timer will wait: a non-negative integer up to MAX_TIMER_MS. */
export function timerMs(v: unknown, name: string): number | undefined {
  const ms = nonNegInt(v, name);
  if (ms !== undefined && ms > MAX_TIMER_MS) throw new TypeError(`${name} must be at most ${MAX_TIMER_MS} ms (a longer timer fires at once), got ${ms}`);
  return ms;
}

export function nonNegNumber(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a non-negative number`);
  return v;
}

/** One line, at most `max` characters. */
export function shorten(s: string, max = 160): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** Dollars to the micro-dollar, so sums and comparisons in tests stay exact enough. */
export function roundUsd(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/**
 * Timers owned by one emulator. `sleep` resolves early when the emulator closes (a held request then answers
 * nothing); `after` schedules a callback that `cancelAll` (reset) and `close` drop.
 */
export class Timers {
  private closedFlag = false;
  private readonly sleepers = new Set<() => void>();
  private readonly scheduled = new Set<NodeJS.Timeout>();

  get closed(): boolean {
    return this.closedFlag;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closedFlag || ms <= 0) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  after(ms: number, fn: () => void): void {
    if (this.closedFlag) return;
    const timer = setTimeout(() => {
      this.scheduled.delete(timer);
      fn();
    }, Math.max(0, ms));
    this.scheduled.add(timer);
  }

  cancelAll(): void {
    for (const t of this.scheduled) clearTimeout(t);
    this.scheduled.clear();
  }

  close(): void {
    this.closedFlag = true;
    this.cancelAll();
    for (const wake of [...this.sleepers]) wake();
  }
}

/** Tokens a task of this description plausibly uses, and their cost at $3 / $15 per million. */
export function tokenEstimate(taskDetails: string): { inputTokens: number; outputTokens: number; cost: number } {
  const inputTokens = 1200 + Math.min(taskDetails.length, 2000) * 7;
  const outputTokens = 180 + Math.min(taskDetails.length, 2000);
  const cost = Math.round(((inputTokens * 3 + outputTokens * 15) / 1e6) * 1e6) / 1e6;
  return { inputTokens, outputTokens, cost };
}

/** Throws, naming them, when `value` has fields other than `fields`: a misspelt one is refused, never ignored. */
export function onlyFields(value: Record<string, unknown>, fields: readonly string[], what: string): void {
  const unknown = Object.keys(value).filter((k) => !fields.includes(k));
  if (unknown.length === 0) return;
  throw new TypeError(`${unknown.map((k) => JSON.stringify(k)).join(', ')} ${unknown.length === 1 ? 'is not a field' : 'are not fields'} of ${what} (its fields: ${fields.join(', ')})`);
}

/**
 * How long a server of the local tools (the emulator, the doorbell receiver) keeps an idle connection open. At Node's
 * 5 s default, which clients read from the Keep-Alive header and keep an idle connection for (fetch a second less), a
 * client whose event loop stalled reused a connection just as the server closed it, and a busy batch's start-session
 * or send-message failed on the network (ECONNRESET), finally, since those are not repeated.
 */
export const IDLE_CONNECTION_MS = 65_000;

/** Keeps idle connections open for IDLE_CONNECTION_MS (and waits as long for request headers). */
export function idleLonger(server: Server): void {
  server.keepAliveTimeout = IDLE_CONNECTION_MS;
  server.headersTimeout = IDLE_CONNECTION_MS + 1_000;
}
