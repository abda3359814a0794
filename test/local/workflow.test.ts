/**
 * End to end: the ASL the stack synthesizes, run by the local runner against the emulator, for every path a
 * workflow can take. Each case asserts the outcome and that every session created was terminated exactly once.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getsPerPoll, maxPollAttempts } from '../../lambdas/shared/handlers';
import { startEmulator, validateTaskBehaviour, type Emulator, type Ledger, type TaskBehaviour } from '../../local/emulator';
import { synthesizeLocalWorkflow, type LocalWorkflow } from '../../local/asl';
import { fileCredentials } from '../../lambdas/shared/site-credentials';
import { runLocalWorkflow, type LocalRunOptions, type LocalRunSummary } from '../../local/runner';
import { builtWorkflow, executorFor } from '../../local/workflow';
import { StateNames } from '../../lambdas/shared/contract';
import { expectNoSessionAsked } from '../helpers/local-harness';

const API_KEY = 'wr-test-KEY-5f1c9a2e7d';
let emulator: Emulator;
let workflow: LocalWorkflow;
let progress: string[];

const twoTasks = {
  session: { startingPoint: 'https://shop.example.com' },
  tasks: [{ taskDetails: "Search for 'wireless keyboard'" }, { taskDetails: 'Add the first result to cart' }],
};

function threeTasks() {
  return { session: {}, tasks: [{ taskDetails: 'Log in' }, { taskDetails: 'Search' }, { taskDetails: 'Add to cart' }] };
}

async function run(input: unknown, extra: Partial<Pick<LocalRunOptions, 'apiKey' | 'signal' | 'siteCredentials' | 'log' | 'onStateEvent'>> = {}): Promise<LocalRunSummary> {
  return runLocalWorkflow({ waitScale: 0, workflow, onProgress: (l) => progress.push(l), ...extra, input, baseUrl: emulator.url, apiKey: extra.apiKey ?? API_KEY });
}

function cause(summary: LocalRunSummary): { message: string; sessionId: string | null; taskIndex: number | null; completed: Array<{ index: number; taskId: string }> } {
  return JSON.parse(summary.error!.cause);
}

/** Every session the emulator created was terminated by exactly one successful terminate request. */
function expectNoLeak(ledger: Ledger, created: number) {
  expect(ledger.created).toBe(created);
  for (const s of ledger.sessions) {
    expect(s.terminateCalls, `session ${s.sessionId}`).toBe(1);
    expect(s.expiredAt).toBeUndefined();
  }
  expect(ledger.open).toBe(0);
}

beforeAll(async () => {
  workflow = synthesizeLocalWorkflow();
  emulator = await startEmulator({ apiKey: API_KEY });
});
afterAll(() => emulator.close());
beforeEach(() => {
  emulator.reset();
  progress = [];
});

describe('local workflow against the emulator', () => {
  it('runs a multi-task flow in order and terminates the session', async () => {
    emulator.enqueueTasks({ outcome: 'completed', pendingPolls: 3 }, { outcome: 'completed', pendingPolls: 0 }, { outcome: 'completed', pendingPolls: 1 });
    const summary = await run(threeTasks());
    expect(summary.status).toBe('SUCCEEDED');
    const ledger = emulator.ledger();
    const session = ledger.sessions[0];
    expect(summary.output!.sessionId).toBe(session.sessionId);
    expect(summary.output!.tasks.map((t) => [t.index, t.taskId, t.status])).toEqual(session.tasks.map((t, i) => [i, t.taskId, 'completed']));
    expect(session.tasks.map((t) => t.taskDetails)).toEqual(['Log in', 'Search', 'Add to cart']);
    expect(summary.output!.tasks[0].result!.message).toEqual(expect.stringContaining('Log in'));
    expectNoLeak(ledger, 1);
    expect(summary.stats.lambdaInvocations).toBeGreaterThanOrEqual(1 + 3 + 1);
    expect(summary.stats.stateTransitions).toBeGreaterThan(10);
    expect(progress.join('\n')).toMatch(/session \S+ started \(3 tasks\)[\s\S]*task 3\/3 completed[\s\S]*session \S+ terminated/);
  });

  it('passes session options to start-session and task options to send-message', async () => {
    const input = {
      session: { startingPoint: 'https://shop.example.com', profileId: 'prof-1', avoidDomains: ['facebook.com'], maxInputTokens: 5000 },
      tasks: [{ taskDetails: 'Find keyboards', outputType: 'structured_json', outputSchema: { type: 'object', properties: { name: { type: 'string' } } }, maxDuration: 120000 }],
    };
    const summary = await run(input);
    expect(summary.status).toBe('SUCCEEDED');
    const session = emulator.ledger().sessions[0];
    expect(session.startBody).toMatchObject({ mode: 'default', profileId: 'prof-1', initialTask: { startingPoint: 'https://shop.example.com', avoidDomains: ['facebook.com'], maxInputTokens: 5000 } });
    expect(session.tasks[0].body).toMatchObject({ actionType: 'newTask', newState: 'start', taskDetails: 'Find keyboards', outputType: 'structured_json', maxDuration: 120000 });
    expect(summary.output!.tasks[0].result!.output).toHaveProperty('name');
  });

  it('records a task that finishes inside send-message without polling it', async () => {
    emulator.enqueueTasks({ outcome: 'completed', inline: true }, { outcome: 'completed', inline: true });
    const summary = await run(twoTasks);
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.output!.tasks).toHaveLength(2);
    expect(emulator.ledger().requests.filter((r) => r.endpoint === 'poll')).toHaveLength(0);
    expectNoLeak(emulator.ledger(), 1);
  });

  it('accepts the alternative "status" response shapes', async () => {
    emulator.enqueueTasks({ outcome: 'completed', shape: 'status', pendingPolls: 2 }, { outcome: 'completed', shape: 'status', inline: true });
    const summary = await run(twoTasks);
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.output!.tasks[0].usage).toMatchObject({ inputTokens: expect.any(Number), outputTokens: expect.any(Number) });
  });

  it('fails with GuardrailTriggered, keeps the completed results and terminates', async () => {
    emulator.enqueueTasks({ outcome: 'completed' }, { outcome: 'guardrail', question: 'I need login credentials', pendingPolls: 1 });
    const summary = await run(threeTasks());
    expect(summary.status).toBe('FAILED');
    expect(summary.error!.name).toBe('Webrun.GuardrailTriggered');
    const c = cause(summary);
    expect(c.message).toContain('I need login credentials');
    expect(c.taskIndex).toBe(1);
    expect(c.sessionId).toBe(emulator.ledger().sessions[0].sessionId);
    expect(c.completed.map((r) => r.index)).toEqual([0]);
    expect(c.completed[0].taskId).toBe(emulator.ledger().sessions[0].tasks[0].taskId);
    expect(emulator.ledger().sessions[0].tasks).toHaveLength(2); // the third task was never sent
    expectNoLeak(emulator.ledger(), 1);
  });

  it('fails with TaskFailed and terminates', async () => {
    emulator.enqueueTasks({ outcome: 'failed', reason: 'Navigation failed: page did not load' });
    const summary = await run(twoTasks);
    expect(summary.error!.name).toBe('Webrun.TaskFailed');
    expect(cause(summary).message).toContain('Navigation failed');
    expect(cause(summary).completed).toEqual([]);
    expectNoLeak(emulator.ledger(), 1);
  });

  it('a failed run\'s last state carries each result once, in the report\'s cause, not also in its loop', async () => {
    emulator.enqueueTasks({ outcome: 'completed', inline: true, data: { note: 'kept-once-4f1a' } }, { outcome: 'failed', reason: 'Out of stock' });
    const seen: Array<{ type: string; state: string; input?: unknown }> = [];
    const summary = await run(twoTasks, { onStateEvent: (e) => void seen.push(e) });
    expect(summary.error!.name).toBe('Webrun.TaskFailed');
    expect(cause(summary).completed.map((r) => r.index)).toEqual([0]);
    const last = seen.find((e) => e.type === 'entered' && e.state === StateNames.failed)!;
    expect(JSON.stringify(last.input).split('kept-once-4f1a')).toHaveLength(2);
    // The same when the failure step's Lambda cannot run: the Pass state that formats the report replaces the state.
    const formatReport = (workflow.definition as { States: Record<string, object> }).States[StateNames.formatReport];
    expect(formatReport).toMatchObject({ Type: 'Pass', Parameters: { report: expect.any(Object) } });
    expect(formatReport).not.toHaveProperty('ResultPath');
  });

  it('a shortened wait (--wait-scale under 1) shortens the pauses, not the real time a task may take: its poll cap grows to match', async () => {
    // Pending for 1.5 s of real time: a poll invocation holds 360 s x 0.001 = 0.36 s, so one (the deployed cap) is not enough.
    emulator.enqueueTasks({ outcome: 'completed', pendingMs: 1_500 });
    const summary = await runLocalWorkflow({ waitScale: 0.001, workflow, input: { tasks: [{ taskDetails: 'Slow', maxDuration: 60_000 }] }, baseUrl: emulator.url, apiKey: API_KEY });
    expect(summary.status).toBe('SUCCEEDED');
    expectNoLeak(emulator.ledger(), 1);
  });

  it('gives up on a stuck task with PollTimeout after the attempt cap derived from maxDuration', async () => {
    emulator.enqueueTasks({ outcome: 'completed', inline: true }, { outcome: 'stuck' });
    const input = { tasks: [{ taskDetails: 'Quick' }, { taskDetails: 'Never ends', maxDuration: 60000 }] };
    const summary = await run(input);
    expect(summary.error!.name).toBe('Webrun.PollTimeout');
    const polls = emulator.ledger().sessions[0].tasks[1].polls;
    expect(polls).toBe(maxPollAttempts(60000, workflow.settings.pollPlan) * getsPerPoll(workflow.settings.pollPlan));
    expect(cause(summary).completed).toHaveLength(1);
    expectNoLeak(emulator.ledger(), 1);
  });

  it('creates no session when start-session fails, and names the error', async () => {
    emulator.injectFault({ endpoint: 'start', status: 402, code: 'INSUFFICIENT_BALANCE' });
    const summary = await run(twoTasks);
    expect(summary.error!.name).toBe('Webrun.InsufficientBalance');
    expect(cause(summary).sessionId).toBeNull();
    expect(emulator.ledger().created).toBe(0);
    expect(emulator.ledger().requests.filter((r) => r.endpoint === 'terminate')).toHaveLength(0);
  });

  it('refuses a wrong API key with Unauthorized and creates no session', async () => {
    const summary = await run(twoTasks, { apiKey: 'not-the-key' });
    expect(summary.error!.name).toBe('Webrun.Unauthorized');
    expect(emulator.ledger().created).toBe(0);
  });

  it.each([
    ['empty task list', { tasks: [] }, 'tasks'],
    ['not an object', [1, 2], 'input'],
    ['null', null, 'input'],
    ['false', false, 'input'],
    ['zero', 0, 'input'],
    ['empty string', '', 'input'],
    ['empty taskDetails', { tasks: [{ taskDetails: '  ' }] }, 'tasks[0].taskDetails'],
    ['maxDuration too large', { tasks: [{ taskDetails: 'x', maxDuration: 300001 }] }, 'tasks[0].maxDuration'],
    ['unknown field', { tasks: [{ taskDetails: 'x', colour: 'red' }] }, 'tasks[0].colour'],
    ['bad starting point', { session: { startingPoint: 'ftp://x' }, tasks: [{ taskDetails: 'x' }] }, 'session.startingPoint'],
  ])('refuses invalid input (%s) with InvalidInput naming the field, before any session', async (_label, input, field) => {
    const summary = await run(input);
    expect(summary.error!.name).toBe('Webrun.InvalidInput');
    expect(cause(summary).message.startsWith(`${field}:`)).toBe(true);
    expect(emulator.ledger().requests).toHaveLength(0);
  });

  it('retries a burst of 429s on send and 503s on poll, then succeeds without sending a task twice', async () => {
    emulator.injectFault({ endpoint: 'send', status: 429, code: 'RATE_LIMIT_EXCEEDED', retryAfterSeconds: 30, times: 3 });
    emulator.injectFault({ endpoint: 'poll', status: 503, code: 'INSTANCE_UNAVAILABLE', times: 3 });
    const summary = await run(twoTasks);
    expect(summary.status).toBe('SUCCEEDED');
    expect(emulator.ledger().sessions[0].tasks).toHaveLength(2);
    expect(progress.some((l) => l.includes('retrying "Send task"'))).toBe(true);
    expectNoLeak(emulator.ledger(), 1);
  });

  it('does not retry a 500 on send-message (the task may have started) and terminates the session', async () => {
    emulator.injectFault({ endpoint: 'send', status: 500, code: 'INTERNAL_ERROR' });
    const summary = await run(twoTasks);
    expect(summary.error!.name).toBe('Webrun.ApiError');
    expect(emulator.ledger().requests.filter((r) => r.endpoint === 'send')).toHaveLength(1);
    expectNoLeak(emulator.ledger(), 1);
  });

  it('retries 5xx on poll and terminate, which are idempotent', async () => {
    emulator.injectFault({ endpoint: 'poll', status: 500, times: 2 });
    emulator.injectFault({ endpoint: 'terminate', status: 503, times: 2 });
    const summary = await run(twoTasks);
    expect(summary.status).toBe('SUCCEEDED');
    const terminates = emulator.ledger().requests.filter((r) => r.endpoint === 'terminate');
    expect(terminates.map((r) => r.status)).toEqual([503, 503, 200]);
    expectNoLeak(emulator.ledger(), 1);
  });

  it('fails with the API error when the outage outlasts the retries, and still terminates', async () => {
    emulator.injectFault({ endpoint: 'poll', status: 503, times: Infinity });
    const summary = await run(twoTasks);
    expect(summary.error!.name).toBe('Webrun.ServiceUnavailable');
    expectNoLeak(emulator.ledger(), 1);
  });

  it('terminates the session when the run is stopped midway (the path that skips Catch)', async () => {
    emulator.enqueueTasks({ outcome: 'completed', inline: true }, { outcome: 'stuck' });
    const controller = new AbortController();
    const pending = runLocalWorkflow({
      input: twoTasks, baseUrl: emulator.url, apiKey: API_KEY, waitScale: 0.01, workflow,
      onProgress: (line) => {
        if (line.includes('task 2/2 pending')) controller.abort();
      },
      signal: controller.signal,
    });
    const summary = await pending;
    expect(summary.status).toBe('FAILED');
    expect(summary.error!.name).toBe('States.Aborted');
    expectNoLeak(emulator.ledger(), 1);
  });

  it('never lets the API key into the output, the error, the progress or the emulator-visible bodies', async () => {
    emulator.enqueueTasks({ outcome: 'completed' }, { outcome: 'guardrail' });
    const failed = await run(twoTasks);
    const ok = await run(twoTasks);
    const everything = JSON.stringify([failed, ok, progress, emulator.ledger()]);
    expect(everything).not.toContain(API_KEY);
    expect(emulator.ledger().requests.every((r) => r.authorization === 'valid')).toBe(true);
  });

  describe('site credentials by reference', () => {
    const PASSWORD = 'hunter2-PASSWORD-8d41c0';
    const credentials = fileCredentials({ 'webrun-sfn/shop': { username: 'ada@example.com', password: PASSWORD } }, 'test secrets');
    const loginTask = {
      session: { startingPoint: 'https://shop.example.com' },
      tasks: [
        { taskDetails: 'Log in', secrets: [{ match: '*.shop.example.com', secret: 'webrun-sfn/shop' }] },
        { taskDetails: 'Read the order history' },
      ],
    };

    it('sends the resolved fields with that task only; the values reach no output, state, progress or log', async () => {
      const seen: unknown[] = [];
      const log = { info: (...a: unknown[]) => seen.push(a), warn: (...a: unknown[]) => seen.push(a), error: (...a: unknown[]) => seen.push(a) };
      const summary = await run(loginTask, { siteCredentials: credentials, log, onStateEvent: (e) => seen.push(e) });
      expect(summary.status).toBe('SUCCEEDED');
      const [login, read] = emulator.ledger({ reveal: true }).sessions[0].tasks.map((t) => t.body as Record<string, unknown>);
      expect(login.secrets).toEqual([{ match: '*.shop.example.com', fields: { username: 'ada@example.com', password: PASSWORD } }]);
      expect(read.secrets).toBeUndefined();
      expect(JSON.stringify(login)).not.toContain('webrun-sfn/shop');
      expect(seen.length).toBeGreaterThan(10);
      expect(JSON.stringify([summary, progress, seen])).not.toContain(PASSWORD);
      expectNoLeak(emulator.ledger(), 1);
    });

    it('fails with ConfigError naming the secret when it cannot be resolved, sends nothing and terminates', async () => {
      const summary = await run(loginTask);
      expect(summary.error!.name).toBe('Webrun.ConfigError');
      expect(cause(summary).message).toContain('webrun-sfn/shop');
      expect(cause(summary).taskIndex).toBe(0);
      expect(emulator.ledger().sessions[0].tasks).toHaveLength(0);
      expectNoLeak(emulator.ledger(), 1);
    });

    it('refuses inline credentials as InvalidInput before any session, without echoing them', async () => {
      const summary = await run({ tasks: [{ taskDetails: 'Log in', secrets: [{ match: '*.shop.example.com', fields: { password: PASSWORD } }] }] });
      expect(summary.error!.name).toBe('Webrun.InvalidInput');
      expect(cause(summary).message.startsWith('tasks[0].secrets[0].fields:')).toBe(true);
      expect(JSON.stringify([summary, progress])).not.toContain(PASSWORD);
      expectNoSessionAsked(emulator);
    });
  });

  const examples = join(__dirname, '..', '..', 'examples');
  // <name>.emulator.json scripts the emulator for examples/<name>.json (npm start -- ... --emulator-tasks).
  const exampleInputs = readdirSync(examples).filter((f) => f.endsWith('.json') && !f.startsWith('site-secrets') && !f.endsWith('.emulator.json'));
  const exampleSecrets = JSON.parse(readFileSync(join(examples, 'site-secrets.local.json'), 'utf8')) as Record<string, unknown>;

  it.each(exampleInputs)('runs examples/%s to success', async (name) => {
    const input = JSON.parse(readFileSync(join(examples, name), 'utf8')) as { tasks: unknown[] };
    const script = join(examples, name.replace(/\.json$/, '.emulator.json'));
    const scripted = existsSync(script) ? (JSON.parse(readFileSync(script, 'utf8')) as TaskBehaviour[]).map(validateTaskBehaviour) : [];
    emulator.enqueueTasks(...scripted);
    const summary = await run(input, { siteCredentials: fileCredentials(exampleSecrets, 'examples/site-secrets.local.json') });
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    expect(summary.output!.tasks).toHaveLength(input.tasks.length);
    // Every question the script asks was answered (by the example's rules: nobody is asked here).
    const asked = scripted.flatMap((b) => b.questions ?? []);
    expect(summary.output!.tasks.flatMap((t) => t.guardrails ?? []).map((g) => g.question)).toEqual(asked);
    expectNoLeak(emulator.ledger(), 1);
  });
});

describe('the executor of a definition', () => {
  it('refuses a definition that fails aws-local-stepfunctions\' check every time it is given, not only the first', () => {
    const broken = { StartAt: 'Missing', States: { Only: { Type: 'Succeed' } } };
    expect(() => executorFor(broken, true)).toThrow(/MISSING_TRANSITION_TARGET/);
    expect(() => executorFor(broken, true)).toThrow(/MISSING_TRANSITION_TARGET/);
  });

  it('runs a definition it checked, and one it was told not to check', async () => {
    const definition = { StartAt: 'Done', States: { Done: { Type: 'Pass', Result: { ok: true }, End: true } } };
    await expect(executorFor(definition, true).run({}).result).resolves.toEqual({ ok: true });
    const unchecked = { StartAt: 'Missing', States: { Done: { Type: 'Pass', Result: { ok: true }, End: true } } };
    expect(() => executorFor(unchecked, false)).not.toThrow();
  });

  it('the report built without a Lambda (its failure step\'s own Lambda failed) keeps every result whole: its JSON parses, quotes and backslashes kept', async () => {
    // The built workflow with stub Lambdas: task 1 completes with a result full of characters JSON escapes, task 2
    // fails, and the failure step's Lambda then times out, so two Pass states build the report.
    const result = { message: 'He said "hi"\nat C:\\temp', price: '€ 9.99' };
    const lambdaError = (name: string, message: string) => Object.assign(new Error(JSON.stringify({ errorType: name, errorMessage: message, trace: [] })), { name });
    let sends = 0;
    const handlers = {
      [StateNames.start]: async () => ({ run: { sessionId: 'sess-1', tasks: [{ taskDetails: 'a' }, { taskDetails: 'b' }], taskCount: 2 }, loop: { index: 0, status: 'ready', results: [] } }),
      [StateNames.send]: async () => {
        if (sends++ > 0) throw lambdaError('Webrun.TaskFailed', 'Task 2 failed: Out of stock.');
        return { index: 1, status: 'ready', results: [{ index: 0, taskId: 't-1', status: 'completed', result }] };
      },
      [StateNames.terminateAfterFailure]: async () => {
        throw lambdaError('Sandbox.Timedout', 'Task timed out after 70.00 seconds');
      },
    };
    const execution = builtWorkflow('poll').machine.run({ tasks: [] } as never, {
      overrides: { taskResourceLocalHandlers: handlers as never },
      context: { Execution: { Id: 'arn:aws:states:local:000000000000:execution:webrun-sfn-local:x', Name: 'x' } } as never,
    });
    const failure = await execution.result.then(() => undefined, (err: { cause?: { name: string; message: string } }) => err.cause);
    expect(failure?.name).toBe('Webrun.TaskFailed');
    const report = JSON.parse(failure!.message) as { sessionId: string; completed: Array<{ result: unknown }>; sessionEnded: boolean };
    expect(report).toMatchObject({ sessionId: 'sess-1', sessionEnded: false });
    expect(report.completed[0].result).toEqual(result);
  });
});

