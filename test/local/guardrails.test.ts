/**
 * Guardrails answered and budgets kept, end to end: the built state machine, the handlers and the emulator. Every
 * case checks the promise the rest of the project keeps: each created session is terminated exactly once, the
 * results of completed tasks are in the output or the failure's cause, and nothing secret (the API key, a
 * secret's answer, the session's live view) is in the output, a log line, an execution event or a progress line.
 */
import { describe, expect } from 'vitest';
import { CompletionModes, WebrunErrors, type CompletionMode } from '../../lambdas/shared/contract';
import type { TaskBehaviour } from '../../local/emulator';
import type { LocalQuestion, LocalRunSummary } from '../../local/runner';
import { expectEveryoneTerminatedOnce, localRunTest, type LocalHarness } from '../helpers/local-harness';

const API_KEY = 'wr-guardrails-KEY-5d21a7';
const PIN = 'pin-secret-8841';

/** Each test has its own emulator and runs concurrently: most of their time is the workflow's scaled waits. */
const it = localRunTest(API_KEY, { pendingPolls: 1 }, { waitScale: 0.01 });

/** Nothing a person or a log pipeline sees holds a secret: the key, a secret's answer, the live view link. */
function expectNothingSecretSeen(h: LocalHarness, summary: LocalRunSummary): void {
  const everything = JSON.stringify([summary, h.seen]);
  expect(everything).not.toContain(API_KEY);
  expect(everything).not.toContain(PIN);
  expect(everything).not.toMatch(/https:\/\/127\.0\.0\.1:8889\//); // the emulator's live view (streaming.webViewURL)
}

const causeOf = (summary: LocalRunSummary) => JSON.parse(summary.error!.cause) as { message: string; completed: Array<{ index: number; result: unknown }>; sessionEnded: boolean };

const SHOP = [{ taskDetails: 'Search for a blue kettle' }, { taskDetails: 'Buy the cheapest one' }];
const CONFIRM: TaskBehaviour = { outcome: 'completed', questions: ['Please confirm purchase?'], pendingPolls: 1 };

describe.concurrent.each(Object.values(CompletionModes) as CompletionMode[])('completion by %s', (completion) => {
  it('a rule answers the second task\'s "confirm purchase?": the answer is in the API\'s ledger, answeredBy "rule" in the output', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed' }, CONFIRM);
    const input = { session: { guardrails: { rules: [{ when: 'confirm purchase', answer: 'yes' }] } }, tasks: SHOP };
    const summary = await h.run(input, { completion });
    expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
    expect(summary.output!.tasks.map((t) => t.index)).toEqual([0, 1]);
    expect(summary.output!.tasks[0].guardrails).toBeUndefined();
    expect(summary.output!.tasks[1].guardrails).toEqual([{ question: 'Please confirm purchase?', answeredBy: 'rule' }]);
    expect(h.emulator.ledger({ reveal: true }).sessions[0].tasks[1].answers).toEqual([{ question: 'Please confirm purchase?', answer: 'yes', newState: 'resume' }]);
    // The run's usage total is the sum of its tasks'.
    const costs = summary.output!.tasks.map((t) => t.usage!.cost);
    expect(summary.output!.usage!.cost).toBeCloseTo(costs[0]! + costs[1]!, 6);
    expectEveryoneTerminatedOnce(h.emulator);
    expectNothingSecretSeen(h, summary);
  });

  describe('a secret the agent was given in this session is redacted from everything it says afterwards', () => {
    const bank = async (name: string): Promise<Record<string, string>> => (name === 'webrun-sfn/bank' ? { pin: PIN } : name === 'webrun-sfn/shop' ? { password: 'pw-SECRET-77' } : {});
    const PIN_RULE = { guardrails: { rules: [{ when: 'enter your pin', answerFromSecret: { secret: 'webrun-sfn/bank', field: 'pin' } }] } };

    it('a secret holding the login and a TOTP seed: the login is sent with the task, the seed never (a session rule names it)', async ({ h }) => {
      const SEED = 'JBSWY3DPEHPK3PXP';
      const shop = async (name: string): Promise<Record<string, string>> => (name === 'webrun-sfn/shop' ? { username: 'ada', password: 'pw-SECRET-77', otp: SEED } : {});
      const input = {
        session: { guardrails: { rules: [{ when: 'verification code', answerFromSecret: { secret: 'webrun-sfn/shop', field: 'otp', totp: true } }] } },
        tasks: [{ taskDetails: 'Sign in', secrets: [{ match: '*.shop.example.com', secret: 'webrun-sfn/shop' }] }],
      };
      h.emulator.enqueueTasks({ outcome: 'completed', questions: ['Enter the verification code'], pendingPolls: 1 });
      const summary = await h.run(input, { completion, siteCredentials: shop });
      expect(summary.status).toBe('SUCCEEDED');
      const [task] = h.emulator.ledger({ reveal: true }).sessions[0].tasks;
      expect(JSON.stringify(task.body)).toContain('pw-SECRET-77');
      expect(JSON.stringify(task.body)).not.toContain(SEED);
      // The rule's code, computed from the seed in the step, was the answer.
      expect(task.answers.map((a) => a.answer)).toEqual([expect.stringMatching(/^\d{6}$/)]);
      expectEveryoneTerminatedOnce(h.emulator);
    });

    it('a later question that repeats the PIN: the GuardrailTriggered cause has it redacted', async ({ h }) => {
      h.emulator.enqueueTasks({ outcome: 'completed', questions: ['Enter your PIN', `PIN ${PIN} was rejected; captcha`], pendingPolls: 1 });
      const summary = await h.run({ tasks: [{ taskDetails: 'Sign in', ...PIN_RULE }] }, { completion, siteCredentials: bank });
      expect(summary.error?.name).toBe(WebrunErrors.GuardrailTriggered);
      expect(causeOf(summary).message).toContain('PIN [redacted] was rejected');
      expectEveryoneTerminatedOnce(h.emulator);
      expectNothingSecretSeen(h, summary);
    });

    it('a long question, kept short, still has its secret answer redacted where the agent repeats it', async ({ h }) => {
      const long = `Enter your PIN ${'please '.repeat(40)}now`;
      h.emulator.enqueueTasks({ outcome: 'completed', questions: [long], pendingPolls: 1, data: { message: `Signed in with ${PIN}` } });
      // Anchored at the end: it matches the question as asked, not the 200 characters kept of it.
      const input = { tasks: [{ taskDetails: 'Sign in', guardrails: { rules: [{ when: '/enter your pin.*now$/i', answerFromSecret: { secret: 'webrun-sfn/bank', field: 'pin' } }] } }] };
      const summary = await h.run(input, { completion, siteCredentials: bank });
      expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
      expect(summary.output!.tasks[0].guardrails![0].question.length).toBeLessThanOrEqual(200);
      expect(summary.output!.tasks[0].result).toEqual({ message: 'Signed in with [redacted]' });
      expectNothingSecretSeen(h, summary);
    });

    it('a failure reason that repeats it: the TaskFailed cause has it redacted', async ({ h }) => {
      h.emulator.enqueueTasks({ outcome: 'failed', questions: ['Enter your PIN'], pendingPolls: 1, reason: `Login with ${PIN} failed` });
      const summary = await h.run({ tasks: [{ taskDetails: 'Sign in', ...PIN_RULE }] }, { completion, siteCredentials: bank });
      expect(summary.error?.name).toBe(WebrunErrors.TaskFailed);
      expect(causeOf(summary).message).toContain('Login with [redacted] failed');
      expectNothingSecretSeen(h, summary);
    });

    it('the next task\'s result that repeats it, and an earlier task\'s site password: both redacted', async ({ h }) => {
      h.emulator.enqueueTasks(
        { outcome: 'completed', questions: ['Enter your PIN'], pendingPolls: 1, data: { message: 'Signed in' } },
        { outcome: 'completed', data: { message: 'Logged in to the shop' } },
        { outcome: 'completed', data: { message: `Your PIN is ${PIN}; password pw-SECRET-77 shown` } },
      );
      const input = { tasks: [
        { taskDetails: 'Sign in', ...PIN_RULE },
        { taskDetails: 'Log in to the shop', secrets: [{ match: '*.example.com', secret: 'webrun-sfn/shop' }] },
        { taskDetails: 'Read the profile' },
      ] };
      const summary = await h.run(input, { completion, siteCredentials: bank });
      expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
      // The third task was given neither: the agent remembers them from the first two.
      expect(summary.output!.tasks[2].result).toEqual({ message: 'Your PIN is [redacted]; password [redacted] shown' });
      expect(JSON.stringify([summary, h.seen])).not.toContain('pw-SECRET-77');
      expectNothingSecretSeen(h, summary);
    });
  });

  it('the same run without the rule fails with Webrun.GuardrailTriggered, the first result kept', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed' }, CONFIRM);
    const summary = await h.run({ tasks: SHOP }, { completion });
    expect(summary.status).toBe('FAILED');
    expect(summary.error!.name).toBe(WebrunErrors.GuardrailTriggered);
    expect(summary.error!.cause).toContain('Please confirm purchase?');
    expect(causeOf(summary).completed.map((r) => r.index)).toEqual([0]);
    expect(h.emulator.ledger().sessions[0].tasks[1].answers).toEqual([]);
    expectEveryoneTerminatedOnce(h.emulator);
  });

  it('a task\'s rule answers from a secret: sent to the API, never recorded, redacted where the agent repeats it', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', questions: ['Enter your PIN'], pendingPolls: 1, data: { message: `Signed in with ${PIN}` } });
    const input = { tasks: [{ taskDetails: 'Sign in', guardrails: { rules: [{ when: 'pin', answerFromSecret: { secret: 'webrun-sfn/bank', field: 'pin' } }] } }] };
    const summary = await h.run(input, { completion, siteCredentials: async (name: string): Promise<Record<string, string>> => (name === 'webrun-sfn/bank' ? { pin: PIN } : {}) });
    expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
    expect(h.emulator.ledger({ reveal: true }).sessions[0].tasks[0].answers).toEqual([{ question: 'Enter your PIN', answer: PIN, newState: 'resume' }]);
    expect(summary.output!.tasks[0].guardrails).toEqual([{ question: 'Enter your PIN', answeredBy: 'rule' }]);
    expectEveryoneTerminatedOnce(h.emulator);
    expectNothingSecretSeen(h, summary);
  });

  it('with `ask` and nobody answering, it fails with Webrun.GuardrailUnanswered after the (scaled) timeout', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed' }, { outcome: 'completed', questions: ['Which account?'], pendingPolls: 1 });
    const asked: LocalQuestion[] = [];
    const started = Date.now();
    const summary = await h.run({ session: { guardrails: { ask: { timeoutSeconds: 100 } } }, tasks: SHOP }, { completion, onQuestion: async (q) => void asked.push(q) });
    const elapsed = Date.now() - started;
    expect(summary.error?.name).toBe(WebrunErrors.GuardrailUnanswered);
    // The second task's question: tasks count from 1 in the message, as in every other.
    expect(causeOf(summary).message).toBe('No one answered the guardrail question of task 2 in time: Which account?');
    // 100 s scaled by 0.01: the question waited its second, not the 0 s of a missing timeout.
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(asked).toEqual([expect.objectContaining({ taskIndex: 1, question: 'Which account?', liveViewUrl: expect.stringContaining('https://127.0.0.1:8889/') })]);
    // The deadline shown is the scaled one the question timed out at (about a second away), not 100 s away.
    const shown = Date.parse(asked[0].deadline) - started;
    expect(shown).toBeGreaterThanOrEqual(900);
    expect(shown).toBeLessThan(elapsed + 1_000);
    expect(causeOf(summary).completed.map((r) => r.index)).toEqual([0]);
    expectEveryoneTerminatedOnce(h.emulator);
    expectNothingSecretSeen(h, summary);
  });

  it('a person\'s answer resumes the task: answeredBy "person", the answer in the ledger only', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', questions: ['Which account?'], pendingPolls: 1 });
    const summary = await h.run({ session: { guardrails: { ask: { timeoutSeconds: 240 } } }, tasks: [{ taskDetails: 'Log in' }] }, {
      completion, onQuestion: async () => ({ answer: 'the business account' }),
    });
    expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
    expect(summary.output!.tasks[0].guardrails).toEqual([{ question: 'Which account?', answeredBy: 'person' }]);
    expect(h.emulator.ledger({ reveal: true }).sessions[0].tasks[0].answers).toEqual([{ question: 'Which account?', answer: 'the business account', newState: 'resume' }]);
    expect(JSON.stringify(summary.output)).not.toContain('the business account');
    expectEveryoneTerminatedOnce(h.emulator);
    expectNothingSecretSeen(h, summary);
  });

  it('a person\'s stop fails the run with Webrun.GuardrailStopped, the session terminated', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', questions: ['Pay 2,000 EUR?'], pendingPolls: 1 });
    const summary = await h.run({ session: { guardrails: { ask: { timeoutSeconds: 240 } } }, tasks: [{ taskDetails: 'Pay' }] }, { completion, onQuestion: async () => 'stop' });
    expect(summary.error?.name).toBe(WebrunErrors.GuardrailStopped);
    expect(JSON.parse(summary.error!.cause)).toMatchObject({ message: 'A person stopped the run at the question of task 1.', taskIndex: 0 });
    expectEveryoneTerminatedOnce(h.emulator);
  });

  it('a budget crossed mid-task stops the task and ends the run with Webrun.BudgetExceeded, results kept', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', cost: 0.01 }, { outcome: 'stuck', costPerSecond: 2 });
    const summary = await h.run({ session: { maxCostUsd: 0.5 }, tasks: [SHOP[0], { taskDetails: SHOP[1].taskDetails, maxDuration: 5000 }] }, { completion });
    expect(summary.error?.name).toBe(WebrunErrors.BudgetExceeded);
    expect(summary.error!.cause).toContain('session.maxCostUsd');
    expect(causeOf(summary).completed.map((r) => r.index)).toEqual([0]);
    // The running task was stopped (state/stop) before the session was terminated.
    expect(h.emulator.ledger().sessions[0].tasks[1]).toMatchObject({ status: 'failed' });
    expectEveryoneTerminatedOnce(h.emulator);
  });
});

describe.concurrent('budgets and balances', () => {
  it('a balance under minBalanceUsd fails with Webrun.InsufficientBalance before any task is sent', async ({ h }) => {
    const summary = await h.run({ session: { minBalanceUsd: 1_000 }, tasks: SHOP });
    expect(summary.error?.name).toBe(WebrunErrors.InsufficientBalance);
    expect(h.emulator.ledger().sessions[0].tasks).toEqual([]);
    expectEveryoneTerminatedOnce(h.emulator);
    // The report names the session the start opened and ended, as every other failure's does.
    const cause = JSON.parse(summary.error!.cause) as { sessionId: string | null; sessionEnded: boolean | null };
    expect(cause).toMatchObject({ sessionId: h.emulator.ledger().sessions[0].sessionId, sessionEnded: true });
    expect(summary.sessionId).toBe(cause.sessionId);
  });

  it('an HTTP 402 on a send is Webrun.InsufficientBalance, the first result kept', async ({ h }) => {
    h.emulator.injectFault({ endpoint: 'send', status: 402, skip: 1 });
    const summary = await h.run({ tasks: SHOP });
    expect(summary.error?.name).toBe(WebrunErrors.InsufficientBalance);
    expect(causeOf(summary).completed.map((r) => r.index)).toEqual([0]);
    expectEveryoneTerminatedOnce(h.emulator);
  });
});

describe.concurrent('faults on the new paths', () => {
  const RULE = { session: { guardrails: { rules: [{ when: 'confirm purchase', answer: 'yes' }] } }, tasks: SHOP };

  it('an answer send refused once (500) is sent again at the next look, and the run succeeds', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed' }, CONFIRM);
    // Sends: task 0, task 1, then the answer.
    h.emulator.injectFault({ endpoint: 'send', status: 500, skip: 2 });
    const summary = await h.run(RULE);
    expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
    expect(h.emulator.ledger().sessions[0].tasks[1].answers).toHaveLength(1);
    expect(summary.output!.tasks[1].guardrails).toEqual([{ question: 'Please confirm purchase?', answeredBy: 'rule' }]);
    expectEveryoneTerminatedOnce(h.emulator);
  });

  it('an answer refused for good (401) ends the run with Webrun.Unauthorized, the first result kept', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed' }, CONFIRM);
    h.emulator.injectFault({ endpoint: 'send', status: 401, code: 'INVALID_API_KEY', skip: 2 });
    const summary = await h.run(RULE);
    expect(summary.error?.name).toBe(WebrunErrors.Unauthorized);
    expect(causeOf(summary).completed.map((r) => r.index)).toEqual([0]);
    expectEveryoneTerminatedOnce(h.emulator);
  });

  it('a run exactly on its budget succeeds: 0.1 + 0.2 + 0 is not over $0.30 (summed in micro-dollars, not floating point)', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', cost: 0.1 }, { outcome: 'completed', cost: 0.2 }, { outcome: 'completed', cost: 0 });
    const summary = await h.run({ session: { maxCostUsd: 0.3 }, tasks: [{ taskDetails: 'a' }, { taskDetails: 'b' }, { taskDetails: 'c' }] });
    expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
    expect(summary.output!.usage!.cost).toBe(0.3);
  });

  it('the last task completing over the budget fails the run too, as it would before a next task, with every result kept', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', cost: 5, inline: true, data: { message: 'done, expensively' } });
    const summary = await h.run({ session: { maxCostUsd: 0.1 }, tasks: [{ taskDetails: 'Expensive' }] });
    expect(summary.error?.name).toBe(WebrunErrors.BudgetExceeded);
    const cause = JSON.parse(summary.error!.cause) as { taskIndex: number | null; completed: Array<{ index: number; result: unknown }> };
    expect(cause.completed).toEqual([expect.objectContaining({ index: 0, result: { message: 'done, expensively' } })]);
    // No task was running: the budget was checked after the last one.
    expect(cause.taskIndex).toBeNull();
    expectEveryoneTerminatedOnce(h.emulator);
  });

  it('a stop that fails still ends the run with Webrun.BudgetExceeded and terminates the session', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'stuck', costPerSecond: 2 });
    // Sends: the task, then the stop.
    h.emulator.injectFault({ endpoint: 'send', status: 500, skip: 1, times: Infinity });
    const summary = await h.run({ session: { maxCostUsd: 0.2 }, tasks: [{ taskDetails: 'Expensive', maxDuration: 5000 }] });
    expect(summary.error?.name).toBe(WebrunErrors.BudgetExceeded);
    expectEveryoneTerminatedOnce(h.emulator);
  });

  it('a budget crossed during the fallback poll of a lost doorbell is Webrun.BudgetExceeded', async ({ h }) => {
    h.emulator.enqueueTasks({ outcome: 'completed', cost: 0.01 }, { outcome: 'completed', pendingMs: 60_000, costPerSecond: 1, doorbell: { drop: true } });
    const summary = await h.run({ session: { maxCostUsd: 0.3 }, tasks: [SHOP[0], { taskDetails: SHOP[1].taskDetails, maxDuration: 5000 }] }, { completion: 'webhook' });
    expect(summary.error?.name).toBe(WebrunErrors.BudgetExceeded);
    expect(h.seen.some((s) => JSON.stringify(s).includes('Fall back to polling'))).toBe(true);
    expect(causeOf(summary).completed.map((r) => r.index)).toEqual([0]);
    expectEveryoneTerminatedOnce(h.emulator);
  });
});
