/**
 * The fault matrix: every fault the emulator can inject, at every step of a two-task workflow, run through the
 * state machine `npm start` runs (local/built/poll.json, which test/local/built-workflows.test.ts keeps equal to the
 * synthesized one). Per case: created sessions == terminated sessions (each exactly once), completed
 * results are in the output or in the failure's cause, and the error name is the one the fault maps to.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { QUOTAS, WebrunErrors } from '../../lambdas/shared/contract';
import type { FaultRule } from '../../local/emulator';
import { localRunTest } from '../helpers/local-harness';

const API_KEY = 'wr-matrix-KEY-0c7e41';
/** Each case has its own emulator, and cases run concurrently: injected latency and retry back-off are waits. */
const it = localRunTest(API_KEY, { pendingPolls: 1 }, { waitScale: 0 });

const INPUT = { session: { startingPoint: 'https://example.com' }, tasks: [{ taskDetails: 'First' }, { taskDetails: 'Second' }] };

type Step = { label: string; endpoint: FaultRule['endpoint']; skip: number; tasksDoneBefore: number };
/** Each task is sent, answers pending, and completes on its second GET (one poll invocation, pendingPolls 1). */
const STEPS: Step[] = [
  { label: 'start', endpoint: 'start', skip: 0, tasksDoneBefore: 0 },
  { label: 'send task 0', endpoint: 'send', skip: 0, tasksDoneBefore: 0 },
  { label: 'poll task 0', endpoint: 'poll', skip: 0, tasksDoneBefore: 0 },
  { label: 'send task 1', endpoint: 'send', skip: 1, tasksDoneBefore: 1 },
  { label: 'poll task 1', endpoint: 'poll', skip: 2, tasksDoneBefore: 1 },
  { label: 'terminate', endpoint: 'terminate', skip: 0, tasksDoneBefore: 2 },
];

type Fault = { label: string; rule: Omit<FaultRule, 'endpoint' | 'skip' | 'times'>; error: string; kind: 'refused' | 'ambiguous' | 'final' | 'harmless' };
const FAULTS: Fault[] = [
  { label: '429 Retry-After 1 s', rule: { status: 429, code: 'RATE_LIMIT_EXCEEDED', retryAfterSeconds: 1 }, error: WebrunErrors.RateLimited, kind: 'refused' },
  { label: '429 Retry-After 60 s', rule: { status: 429, code: 'RATE_LIMIT_EXCEEDED', retryAfterSeconds: 60 }, error: WebrunErrors.RateLimited, kind: 'refused' },
  { label: '503 INSTANCE_UNAVAILABLE', rule: { status: 503, code: 'INSTANCE_UNAVAILABLE' }, error: WebrunErrors.ServiceUnavailable, kind: 'refused' },
  { label: '500', rule: { status: 500 }, error: WebrunErrors.ApiError, kind: 'ambiguous' },
  { label: '502 HTML page', rule: { status: 502, rawBody: '<html>Bad gateway</html>' }, error: WebrunErrors.ApiError, kind: 'ambiguous' },
  { label: 'hang-up', rule: { hangup: true }, error: WebrunErrors.ApiError, kind: 'ambiguous' },
  { label: '200 non-JSON', rule: { status: 200, rawBody: 'OK' }, error: WebrunErrors.UnexpectedResponse, kind: 'ambiguous' },
  { label: '401 INVALID_API_KEY', rule: { status: 401, code: 'INVALID_API_KEY' }, error: WebrunErrors.Unauthorized, kind: 'final' },
  { label: '402 INSUFFICIENT_BALANCE', rule: { status: 402, code: 'INSUFFICIENT_BALANCE' }, error: WebrunErrors.InsufficientBalance, kind: 'final' },
  { label: '404 SESSION_EXPIRED', rule: { status: 404, code: 'SESSION_EXPIRED' }, error: WebrunErrors.SessionExpired, kind: 'final' },
  { label: '300 ms latency', rule: { latencyMs: 300 }, error: '', kind: 'harmless' },
];

/** Start and send must not repeat a request that may have taken effect; poll and terminate may. */
const idempotent = (step: Step) => step.endpoint === 'poll' || step.endpoint === 'terminate';

interface Case { step: Step; fault: Fault; times: number }
const CASES: Case[] = [];
for (const step of STEPS) {
  for (const fault of FAULTS) {
    // On terminate, "session expired" means it is gone and a 2xx means it was accepted: the client trusts both,
    // so an emulator fault that answers them without ending the session is a lie no client could detect.
    if (step.endpoint === 'terminate' && (fault.rule.code === 'SESSION_EXPIRED' || fault.rule.status === 200)) continue;
    const times = fault.kind === 'final' || fault.kind === 'harmless' ? [1] : [1, 3, Infinity];
    for (const t of times) CASES.push({ step, fault, times: t });
  }
}

function expected(c: Case): 'SUCCEEDED' | string {
  const { step, fault, times } = c;
  if (fault.kind === 'harmless') return 'SUCCEEDED';
  const retried = fault.kind === 'refused' || (fault.kind === 'ambiguous' && idempotent(step));
  if (retried && times !== Infinity) return 'SUCCEEDED';
  // A final error on the success path's terminate goes to the failure path, whose terminate then succeeds.
  return fault.error;
}

describe.concurrent(`fault matrix (${CASES.length} cases)`, () => {
  it.for(CASES.map((c) => [`${c.fault.label} x${c.times} at ${c.step.label}`, c] as const))('%s', async ([, c], { h }) => {
    h.emulator.injectFault({ ...c.fault.rule, endpoint: c.step.endpoint, skip: c.step.skip, times: c.times });
    const summary = await h.run(INPUT);
    const ledger = h.emulator.ledger();
    const want = expected(c);

    // Both executors, one verdict: the run stayed inside Step Functions' quotas.
    expect(summary.stats.largestPayloadBytes).toBeLessThan(QUOTAS.maxPayloadBytes);
    expect(summary.stats.historyEvents).toBeLessThan(QUOTAS.maxHistoryEvents);
    expect(ledger.created).toBe(c.step.endpoint === 'start' && want !== 'SUCCEEDED' ? 0 : 1);
    // A terminate the API refuses for ever cannot end the session: the report says so (the deployed cleanup retries).
    const unendable = c.step.endpoint === 'terminate' && c.times === Infinity;
    if (unendable) {
      expect(ledger.open).toBe(1);
      expect(JSON.parse(summary.error!.cause)).toMatchObject({ sessionEnded: false, cleanupError: c.fault.error, sessionId: ledger.sessions[0].sessionId });
    } else {
      // Nothing leaks: each created session was ended by exactly one successful terminate.
      expect(ledger.open).toBe(0);
      for (const s of ledger.sessions) expect(s.terminateCalls).toBe(1);
    }

    if (want === 'SUCCEEDED') {
      expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
      expect(summary.output!.tasks.map((t) => t.index)).toEqual([0, 1]);
      expect(ledger.sessions[0].tasks).toHaveLength(2); // no task was sent twice
    } else {
      expect(summary.status).toBe('FAILED');
      expect(summary.error!.name).toBe(want);
      const cause = JSON.parse(summary.error!.cause);
      // No result is lost: the tasks done before the fault are in the cause, with their ids.
      const done = ledger.sessions[0]?.tasks.filter((t) => t.status === 'completed').map((t) => t.taskId) ?? [];
      expect(cause.completed.map((r: { taskId: string }) => r.taskId)).toEqual(done);
      expect(done).toHaveLength(c.step.tasksDoneBefore);
      if (c.fault.kind !== 'refused' && !idempotent(c.step)) {
        // Final and ambiguous errors on start/send are never retried.
        expect(ledger.requests.filter((r) => r.endpoint === c.step.endpoint)).toHaveLength(c.step.skip + 1);
      }
    }
    // Secret hygiene: the key is in no output, error, log line, execution event or progress line.
    expect(h.seen.some((s) => (s as unknown[])[0] === 'event')).toBe(true);
    expect(h.seen.some((s) => (s as unknown[])[0] === 'info')).toBe(want !== 'SUCCEEDED' && c.step.endpoint === 'start' ? false : true);
    expect(JSON.stringify([summary, h.seen])).not.toContain(API_KEY);
  });
});

describe('generated inputs through the whole local workflow', () => {
  const validTask = fc.record({ taskDetails: fc.string({ minLength: 1, maxLength: 40 }) }, { noNullPrototype: true });
  const anyInput = fc.oneof(
    fc.jsonValue(),
    fc.record({ tasks: fc.array(validTask, { maxLength: 3 }) }),
    fc.record({ session: fc.jsonValue(), tasks: fc.array(fc.oneof(validTask, fc.jsonValue()), { maxLength: 3 }) }),
    fc.record({ tasks: fc.array(fc.record({ taskDetails: fc.jsonValue(), maxDuration: fc.oneof(fc.integer(), fc.double()) }), { maxLength: 2 }) }),
  );

  it('either runs or is refused with InvalidInput before any session; never crashes or leaks', async ({ h }) => {
    await fc.assert(
      fc.asyncProperty(anyInput, async (input) => {
        h.emulator.reset();
        const summary = await h.run(input);
        const ledger = h.emulator.ledger();
        expect(ledger.open).toBe(0);
        if (summary.status === 'SUCCEEDED') {
          expect(summary.output!.tasks).toHaveLength((input as { tasks: unknown[] }).tasks.length);
        } else {
          expect(summary.error!.name).toBe(WebrunErrors.InvalidInput);
          expect(ledger.created).toBe(0);
        }
      }),
      { numRuns: 60 },
    );
  });
});
