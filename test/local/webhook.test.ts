/**
 * Completion by webhook, end to end: the definition `completion: WEBHOOK` synthesizes (as built in local/built/, kept
 * equal to the synthesized one by test/local/built-workflows.test.ts), run locally against the
 * emulator, which rings the runner's receiver on 127.0.0.1 when a task ends (and can drop, delay, duplicate, ring
 * early or forge its doorbells).
 */
import { describe, expect } from 'vitest';
import { StateNames, type FailureCause } from '../../lambdas/shared/contract';
import type { StateEvent } from '../../local/progress';
import type { LocalRunOptions, LocalRunSummary } from '../../local/runner';
import { localRunTest, type LocalHarness } from '../helpers/local-harness';

const API_KEY = 'wr-webhook-KEY-3b9f01d2';

/** Each test has its own emulator and runs concurrently: most of their time is waiting for doorbells. */
const it = localRunTest(API_KEY, { webhookPendingMs: 50 }, { waitScale: 0.01, completion: 'webhook' });

const tasks = (n: number, maxDuration = 60_000) => ({ tasks: Array.from({ length: n }, (_, i) => ({ taskDetails: `Task ${i}`, maxDuration })) });
async function run(h: LocalHarness, input: unknown, extra: Partial<LocalRunOptions> = {}): Promise<LocalRunSummary> {
  const summary = await h.run(input, extra);
  await h.emulator.doorbellsSettled();
  return summary;
}
/** How many times the test's runs entered `state`. */
const entered = (h: LocalHarness, state: string) =>
  (h.seen as Array<[string, StateEvent]>).filter(([kind, e]) => kind === 'event' && e.type === 'entered' && e.state === state).length;

describe.concurrent('completion by webhook', () => {
  it('follows each task by its doorbell: two transitions a task, no poll state, every session ended', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', pendingMs: 80 }, { outcome: 'completed', inline: true }, { outcome: 'completed', pendingMs: 30 });
    const summary = await run(h, tasks(3));
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    expect(summary.output!.tasks.map((t) => t.index)).toEqual([0, 1, 2]);
    expect(entered(h, StateNames.poll) + entered(h, StateNames.wait) + entered(h, StateNames.fallBack)).toBe(0);
    // Start, Next step? once more than tasks, Terminate, Succeed: the marginal cost of a task is Next step? + Send task.
    expect(summary.stats.stateTransitions).toBe(1 + 2 * 3 + 1 + 1 + 1);
    // The history as Step Functions writes it: ExecutionStarted; Start session (a Task: entered, scheduled, started,
    // succeeded, exited); Next step? 4 times (a Choice: entered, exited); Send task 3 times (a Task that waits for a
    // token: TaskSubmitted besides); Terminate session; Workflow succeeded (entered, exited); ExecutionSucceeded.
    expect(summary.stats.historyEvents).toBe(1 + 5 + 4 * 2 + 3 * 6 + 5 + 2 + 1);
    const ledger = h.emulator.ledger();
    expect(ledger.open).toBe(0);
    // Every task rang, the inline one too (after its send step had resumed the execution). Which answer each bell
    // got depends on timing: 200 (resumed, or already resumed), 202 (rang before send-message's answer was
    // stored: a hint, the send step looks itself), 404 (its record already claimed). None is an error.
    const rang = ledger.doorbells.filter((d) => d.kind === 'task');
    expect(rang).toHaveLength(3);
    for (const bell of rang) expect([200, 202, 404]).toContain(bell.status);
  });

  it('a lost doorbell costs the wait, then polling takes the task over and it completes', async ({ h }) => {
    // Pending long enough for the send step to find it still running, even with the other tests running at once on a
    // busy machine (at 300 ms a starved send step once found it completed, and never waited for a doorbell).
    h.emulator.enqueueTasks({ outcome: 'completed', pendingMs: 1_500, doorbell: { drop: true } });
    const progress: string[] = [];
    const summary = await run(h, tasks(1, 5_000), { onProgress: (l) => progress.push(l) });
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    expect(entered(h, StateNames.fallBack)).toBe(1);
    expect(progress.join('\n')).toContain('got no doorbell in time: polling the task instead');
    expect(h.emulator.ledger().open).toBe(0);
  });

  it('duplicate and delayed doorbells resume the task once; the late ones are refused', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', pendingMs: 40, doorbell: { duplicate: 4 } }, { outcome: 'completed', pendingMs: 20, doorbell: { delayMs: 60 } });
    const summary = await run(h, tasks(2));
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    const bells = h.emulator.ledger().doorbells.filter((d) => d.kind === 'task');
    expect(bells).toHaveLength(5);
    // One resume per task: the output holds each once, and no task was sent again.
    expect(summary.output!.tasks.map((t) => t.index)).toEqual([0, 1]);
    expect(h.emulator.ledger().sessions[0].tasks).toHaveLength(2);
    expect(summary.stats.stateTransitions).toBe(1 + 2 * 2 + 1 + 1 + 1);
  });

  it('an early doorbell (right nonce, task still running) resumes nothing; the real one does', async ({ h }) => {
    // The early bell rings halfway: long enough before the end for it to arrive first, with other runs at once.
    h.emulator.enqueueTasks({ outcome: 'completed', pendingMs: 600, doorbell: { early: true } });
    const summary = await run(h, tasks(1));
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    const bells = h.emulator.ledger().doorbells;
    expect(bells.find((d) => d.kind === 'early')?.status).toBe(202);
    expect(bells.find((d) => d.kind === 'task')?.status).toBe(200);
  });

  it('a forged doorbell to the receiver (wrong nonce or auth) is refused and resumes nothing', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', pendingMs: 1_000 });
    let forging: Promise<number[]> | undefined;
    const ring = async (url: string, authorization: string) => (await h.emulator.ringDoorbell({ url, headers: { authorization } })).status ?? 0;
    const summary = await run(h, tasks(1), {
      onProgress: (line) => {
        if (!line.includes('task 1/1 sent')) return;
        // Once the emulator has the task (and its webhook URL), forge rings at it before the task ends (a ring after
        // the run, when the receiver is closed, would get no status at all).
        forging = (async () => {
          let task;
          while (!(task = h.emulator.ledger().sessions[0]?.tasks[0])) await new Promise((resolve) => setTimeout(resolve, 5));
          const url = (task.body as { webhook: { url: string } }).webhook.url;
          return [await ring(url.replace(/[A-Za-z0-9_-]{43}$/, 'B'.repeat(43)), 'Bearer x'), await ring(url, 'Bearer not-the-auth')];
        })();
      },
    });
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    expect(await forging).toEqual([404, 401]);
    expect(summary.output!.tasks).toHaveLength(1);
  });

  it('a guardrail ending arrives by the same doorbell: the run fails with it, results kept, session ended', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', pendingMs: 20 }, { outcome: 'guardrail', question: 'Confirm purchase?', pendingMs: 20 });
    const summary = await run(h, tasks(2));
    expect(summary.error!.name).toBe('Webrun.GuardrailTriggered');
    const cause = JSON.parse(summary.error!.cause) as FailureCause;
    expect(cause.message).toContain('Confirm purchase?');
    expect(cause.completed.map((r) => r.index)).toEqual([0]);
    expect(cause.sessionEnded).toBe(true);
    expect(h.emulator.ledger().open).toBe(0);
  });

  it('a stop while a task waits for its doorbell ends the run and its session', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'stuck' });
    const controller = new AbortController();
    const summary = await run(h, tasks(1), {
      signal: controller.signal,
      onProgress: (line) => {
        if (line.includes('task 1/1 sent')) setTimeout(() => controller.abort(), 50);
      },
    });
    expect(summary.error!.name).toBe('States.Aborted');
    expect(h.emulator.ledger().open).toBe(0);
  });

  it('the API key and the doorbell auth appear in no output, event or progress line', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', pendingMs: 20 }, { outcome: 'failed', pendingMs: 20, reason: `bad key ${API_KEY}` });
    const progress: string[] = [];
    const summary = await run(h, tasks(2), { onProgress: (l) => progress.push(l) });
    const auths = h.emulator.ledger().sessions[0].tasks.map((t) => (t.body as { webhook: { auth: string } }).webhook.auth);
    const everything = JSON.stringify([summary, h.seen, progress]);
    expect(everything).not.toContain(API_KEY);
    // The emulator's ledger records the auth as redacted, so compare with what the receiver would have needed.
    expect(auths.every((a) => a === '[redacted]')).toBe(true);
  });
});
