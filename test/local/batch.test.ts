/**
 * The local batch: the deployed batch definition (items from the input instead of S3) run by aws-local-stepfunctions,
 * each item a local run of the workflow against the emulator, at most N at once, every session ended.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXCEEDED_TOLERATED_FAILURES } from '../../lambdas/shared/batch-contract';
import { WebrunErrors } from '../../lambdas/shared/contract';
import { runLocalBatch, type LocalBatchOptions } from '../../local/batch';
import { parseItems, type BatchItem } from '../../local/batch-items';
import { startEmulator, type Emulator } from '../../local/emulator';
import { builtWorkflow } from '../../local/workflow';
import { withoutSessionLimitRetry } from '../helpers/session-limit-retry';

const API_KEY = 'batch-test-key-7f3a9c';
const TEMPLATE = { vars: { shop: 'https://shop.example.com' }, session: { startingPoint: '{{shop}}/p/{{sku}}' }, tasks: [{ taskDetails: 'Read the price of {{sku}}' }] };
const workflow = builtWorkflow('poll');

function csvItems(n: number): BatchItem[] {
  return parseItems(`sku\n${Array.from({ length: n }, (_, i) => `SKU-${i}`).join('\n')}\n`, 'csv', 'items.csv');
}

let emulator: Emulator;
let limited: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ apiKey: API_KEY, pendingPolls: 0 });
  limited = await startEmulator({ apiKey: API_KEY, pendingPolls: 0, maxSessions: 4 });
});
afterAll(async () => {
  await emulator.close();
  await limited.close();
});
beforeEach(() => {
  emulator.reset();
  limited.reset();
});

const run = (over: Partial<LocalBatchOptions> & Pick<LocalBatchOptions, 'items'>) =>
  runLocalBatch({ template: TEMPLATE, format: 'csv', concurrency: 8, baseUrl: emulator.url, apiKey: API_KEY, waitScale: 0, workflow, ...over });

/** The `sku` of each item whose task the emulator failed, from its ledger. */
function failedSkus(e: Emulator): string[] {
  return e.ledger().sessions.flatMap((s) => s.tasks.filter((t) => t.status === 'failed').map((t) => /of (SKU-\d+)/.exec(t.taskDetails)?.[1] ?? '?')).sort();
}

describe('runLocalBatch', () => {
  it('runs every item at most 8 at once, in a session of its own that it ends, with the item\'s vars filled in', async () => {
    const items = csvItems(40);
    let running = 0;
    let mostRunning = 0;
    const summary = await run({
      items,
      onItemStarted: () => {
        running++;
        mostRunning = Math.max(mostRunning, running);
      },
      onItemFinished: () => running--,
    });
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.items).toEqual({ total: 40, succeeded: 40, failed: 0 });
    const ledger = emulator.ledger();
    expect(ledger.created).toBe(40);
    expect(ledger.terminated).toBe(40);
    expect(ledger.open).toBe(0);
    expect(ledger.sessions.every((s) => s.terminateCalls === 1)).toBe(true);
    expect(ledger.maxOpen).toBeLessThanOrEqual(8);
    expect(mostRunning).toBe(8);
    // Each item's own vars reached the API, merged over the template's.
    expect(ledger.sessions.map((s) => s.tasks[0].taskDetails).sort()).toEqual(items.map((i) => `Read the price of ${String(i.vars.sku)}`).sort());
    expect(ledger.sessions.map((s) => (s.startBody as { initialTask?: { startingPoint?: string } }).initialTask?.startingPoint)).toContain('https://shop.example.com/p/SKU-7');
    // Results in the items' order, each with its item and its workflow output.
    expect(summary.results.map((r) => r.item)).toEqual(items.map((i) => i.vars));
    expect(summary.results[5]).toMatchObject({ status: 'SUCCEEDED', output: { tasks: [{ status: 'completed' }] } });
    expect(summary.results[5].output?.tasks[0].result?.message).toContain('SKU-5');
    // 4 batch transitions (defaults, prepare, choice, map), and per item: the map's child execution (billed per child
    // started), its "Run item", and the workflow run's 9 (a task that completes at its first poll).
    expect(summary.stats.stateTransitions).toBe(4 + 40 * (1 + 1 + 9));
    expect(summary.stats.lambdaInvocations).toBe(40 * 4);
  });

  it('hands each item the template\'s vars as they are: quotes, backslashes and newlines reach the API unchanged', async () => {
    const template = { vars: { note: 'say "hi"\tat C:\\temp\nthen stop' }, tasks: [{ taskDetails: 'Read the price of {{sku}}: {{note}}' }] };
    const summary = await run({ template, items: csvItems(2) });
    expect(summary.status).toBe('SUCCEEDED');
    expect(emulator.ledger().sessions.map((s) => s.tasks[0].taskDetails).sort()).toEqual([0, 1].map((i) => `Read the price of SKU-${i}: ${template.vars.note}`));
  });

  it('with the emulator\'s session limit at 4 and concurrency 8: every item succeeds (SESSION_LIMIT_REACHED retried), never more than 4 open', async () => {
    // Tasks that take a while, so that a refused start must wait for a session to end. A scaled Retry waits a fixed
    // interval (no backoff), so the retry's budget here is 60 × 10 s × 0.01 = 6 s: far more than 16 items, 4 at a
    // time, need even on a loaded machine (at 0.002 and 40 items, 1.2 s, it ran out once under two test workers).
    const slow = () => limited.enqueueTasks(...Array.from({ length: 16 }, () => ({ outcome: 'completed' as const, pendingMs: 150 })));
    slow();
    const summary = await run({ items: csvItems(16), baseUrl: limited.url, waitScale: 0.01, workflow });
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.items).toEqual({ total: 16, succeeded: 16, failed: 0 });
    const ledger = limited.ledger();
    expect(ledger.maxOpen).toBe(4);
    expect(ledger.created).toBe(16);
    expect(ledger.terminated).toBe(16);
    expect(ledger.requests.filter((r) => r.endpoint === 'start' && r.status === 429).length).toBeGreaterThan(0);

    // Control: without that retry (only the short one for rate limits), items give up before a session frees up.
    limited.reset();
    slow();
    const control = await run({ items: csvItems(16), baseUrl: limited.url, waitScale: 0.01, toleratedFailurePercentage: 100, workflow: withoutSessionLimitRetry(workflow) });
    expect(control.items.failed).toBeGreaterThan(0);
    expect(limited.ledger().maxOpen).toBe(4);
    expect(limited.ledger().open).toBe(0);
  });

  describe('a batch of 100 in which the emulator fails exactly 3 items\' tasks', () => {
    const failThree = (e: Emulator) => e.enqueueTasks({ outcome: 'failed' }, { outcome: 'failed' }, { outcome: 'failed' });

    it('succeeds with 5% tolerated, and reports exactly those 3 as failed', async () => {
      failThree(emulator);
      const summary = await run({ items: csvItems(100), toleratedFailurePercentage: 5 });
      expect(summary.status).toBe('SUCCEEDED');
      expect(summary.items).toEqual({ total: 100, succeeded: 97, failed: 3 });
      const failed = summary.results.filter((r) => r.status === 'FAILED');
      expect(failed.map((r) => String(r.item.sku)).sort()).toEqual(failedSkus(emulator));
      for (const r of failed) expect(r.error?.name).toBe(WebrunErrors.TaskFailed);
      expect(emulator.ledger()).toMatchObject({ created: 100, terminated: 100, open: 0 });
    });

    it('fails without tolerance as Step Functions does: States.ExceedToleratedFailureThreshold, the rest stopped or not started', async () => {
      failThree(emulator);
      const summary = await run({ items: csvItems(100) });
      expect(summary.status).toBe('FAILED');
      expect(summary.error?.name).toBe(EXCEEDED_TOLERATED_FAILURES);
      const failed = summary.results.filter((r) => r.status === 'FAILED').map((r) => String(r.item.sku));
      expect(failed.length).toBeGreaterThanOrEqual(1);
      expect(failedSkus(emulator)).toEqual(expect.arrayContaining(failed));
      expect(summary.items.failed).toBe(failed.length);
      expect(summary.results.some((r) => r.status === 'PENDING')).toBe(true);
      // Every session that was created was ended, the stopped ones included.
      const ledger = emulator.ledger();
      expect(ledger.open).toBe(0);
      expect(ledger.terminated).toBe(ledger.created);
      expect(ledger.created).toBeLessThan(100);
    });
  });

  it('a stop ends every running item\'s session and reports the rest as not started', async () => {
    const items = csvItems(30);
    emulator.enqueueTasks(...items.map(() => ({ outcome: 'stuck' as const })));
    const controller = new AbortController();
    let started = 0;
    const summary = await run({
      items,
      waitScale: 0.001,
      signal: controller.signal,
      onItemStarted: () => {
        if (++started === 8) setTimeout(() => controller.abort(), 50);
      },
    });
    expect(summary.status).toBe('ABORTED');
    expect(summary.results.filter((r) => r.status === 'ABORTED')).toHaveLength(8);
    expect(summary.results.filter((r) => r.status === 'PENDING')).toHaveLength(22);
    expect(summary.items).toEqual({ total: 30, succeeded: 0, failed: 0 });
    const ledger = emulator.ledger();
    expect(ledger.created).toBe(8);
    expect(ledger.terminated).toBe(8);
    expect(ledger.open).toBe(0);
  });

  it('refuses a concurrency or tolerance out of range before anything runs', async () => {
    await expect(run({ items: csvItems(1), concurrency: 0 })).rejects.toThrow(/concurrency/);
    await expect(run({ items: csvItems(1), toleratedFailurePercentage: 101 })).rejects.toThrow(/toleratedFailurePercentage/);
    expect(emulator.ledger().created).toBe(0);
  });
});
