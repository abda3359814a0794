/** Injected faults: which request a rule applies to, and what the server does instead of answering normally. */
import { apiError, CODE_FOR_STATUS, STATUS_FOR_CODE, type Reply } from './replies';
import type { Endpoint, FaultRule } from './types';
import { isObject, nonNegInt, onlyFields, timerMs } from './util';

const ENDPOINTS: readonly Endpoint[] = ['start', 'send', 'terminate', 'poll', 'run-task', 'any'];
const FAULT_FIELDS: ReadonlyArray<keyof FaultRule> = ['endpoint', 'status', 'code', 'error', 'retryAfterSeconds', 'rawBody', 'contentType', 'latencyMs', 'hangup', 'times', 'skip'];

export function validateFaultRule(r: unknown): FaultRule {
  if (!isObject(r)) throw new TypeError('a fault rule must be an object');
  onlyFields(r, FAULT_FIELDS, 'a fault rule');
  if (!ENDPOINTS.includes(r.endpoint as Endpoint)) throw new TypeError(`endpoint must be one of ${ENDPOINTS.join(', ')}`);
  if (r.hangup !== undefined && typeof r.hangup !== 'boolean') throw new TypeError('hangup must be a boolean');
  for (const k of ['error', 'contentType'] as const) if (r[k] !== undefined && typeof r[k] !== 'string') throw new TypeError(`${k} must be a string`);
  const rule = { ...(r as unknown as FaultRule) };
  if (r.times === null || r.times === 'Infinity') rule.times = Infinity;
  if (rule.times !== undefined && rule.times !== Infinity) nonNegInt(rule.times, 'times');
  nonNegInt(rule.skip, 'skip');
  timerMs(rule.latencyMs, 'latencyMs');
  nonNegInt(rule.retryAfterSeconds, 'retryAfterSeconds');
  if (rule.status !== undefined && (!Number.isInteger(rule.status) || rule.status < 100 || rule.status > 599)) {
    throw new TypeError('status must be an HTTP status code');
  }
  if (rule.code !== undefined && typeof rule.code !== 'string') throw new TypeError('code must be a string');
  if (rule.rawBody !== undefined && typeof rule.rawBody !== 'string') throw new TypeError('rawBody must be a string');
  return rule;
}

/** What to do with a faulted request, after `latencyMs`. */
export type FaultAction =
  | { kind: 'hangup' }
  | { kind: 'raw'; status: number; body: string; headers: Record<string, string> }
  | { kind: 'reply'; reply: Reply }
  /** Latency only: then answer normally. */
  | { kind: 'pass' };

export function faultAction(rule: FaultRule): FaultAction {
  if (rule.hangup) return { kind: 'hangup' };
  const headers: Record<string, string> = {};
  if (rule.retryAfterSeconds !== undefined) headers['retry-after'] = String(rule.retryAfterSeconds);
  if (rule.rawBody !== undefined) {
    headers['content-type'] = rule.contentType ?? 'text/html; charset=utf-8';
    return { kind: 'raw', status: rule.status ?? 200, body: rule.rawBody, headers };
  }
  if (rule.status !== undefined || rule.code !== undefined) {
    const code = rule.code ?? (rule.status !== undefined ? CODE_FOR_STATUS[rule.status] : undefined) ?? 'INTERNAL_ERROR';
    const status = rule.status ?? STATUS_FOR_CODE[code] ?? 500;
    return { kind: 'reply', reply: apiError(status, code, rule.error, headers) };
  }
  return { kind: 'pass' };
}

interface FaultState {
  rule: FaultRule;
  seen: number;
  applied: number;
}

/** The injected rules, in order. Every rule counts every request that matches its endpoint (see `skip`). */
export class FaultBook {
  private rules: FaultState[] = [];

  /** Adds every rule, or none when one is invalid; returns how many rules there are now. */
  add(rules: readonly unknown[]): number {
    const valid = rules.map(validateFaultRule);
    for (const rule of valid) this.rules.push({ rule, seen: 0, applied: 0 });
    return this.rules.length;
  }

  /** The first rule that applies to this request, if any. */
  pick(endpoint: Exclude<Endpoint, 'any'>): FaultRule | undefined {
    let picked: FaultState | undefined;
    for (const f of this.rules) {
      if (f.rule.endpoint !== endpoint && f.rule.endpoint !== 'any') continue;
      f.seen += 1;
      if (!picked && f.seen > (f.rule.skip ?? 0) && f.applied < (f.rule.times ?? 1)) picked = f;
    }
    if (picked) picked.applied += 1;
    return picked?.rule;
  }

  reset(): void {
    this.rules = [];
  }
}
