import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, ConfigError, GuardrailTriggered, InvalidInput, PollTimeout, TaskFailed } from '../../../lambdas/shared/errors';
import {
  causeMessage,
  failureReport,
  getsPerPoll,
  makeHandlers,
  maxPollAttempts,
  type Log,
} from '../../../lambdas/shared/handlers';
import { DEFAULT_POLL_PLAN, ENV, MAX_CAUSE_CHARS, type PollPlan } from '../../../lambdas/shared/contract';
import { lambdaDeps, pollPlanFromEnv } from '../../../lambdas/shared/lambda-runtime';
import type { SiteCredentialResolver } from '../../../lambdas/shared/site-credentials';
import type { TaskOutcome, TaskResult, WorkflowTask } from '../../../lambdas/shared/types';
import { WebrunClient } from '../../../lambdas/shared/webrun-client';
import { caught } from '../../helpers/errors';

const TASK: WorkflowTask = { taskDetails: 'Search for a keyboard', maxDuration: 180_000 };
const PLAN: PollPlan = { intervalSeconds: 5, holdSeconds: 6, everySeconds: 3, graceSeconds: 60 };

interface LogEntry {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

function fakeClient() {
  return {
    startSession: vi.fn(async () => ({ sessionId: 'sess-1', balance: 10 })),
    sendTask: vi.fn(async (): Promise<TaskOutcome> => ({ kind: 'pending', taskId: 't-1' })),
    getTask: vi.fn(async (): Promise<TaskOutcome> => ({ kind: 'pending', taskId: 't-1' })),
    terminateSession: vi.fn(async () => ({ terminated: true })),
  };
}

function setup(plan: PollPlan = PLAN, siteCredentials?: SiteCredentialResolver) {
  const client = fakeClient();
  const factory = vi.fn(async () => client as unknown as WebrunClient);
  const logs: LogEntry[] = [];
  const log: Log = {
    info: (message, fields) => void logs.push({ level: 'info', message, fields }),
    warn: (message, fields) => void logs.push({ level: 'warn', message, fields }),
    error: (message, fields) => void logs.push({ level: 'error', message, fields }),
  };
  const sleeps: number[] = [];
  const handlers = makeHandlers({ client: factory, pollPlan: plan, log, sleep: async (ms) => void sleeps.push(ms), siteCredentials });
  return { client, factory, logs, sleeps, handlers };
}


const completedResult = (index: number, taskId: string, result: Record<string, unknown> = { message: `done ${index}` }): TaskResult => ({ index, taskId, status: 'completed', result });

describe('startSession', () => {
  it('validates { input }, starts the session with the session options and returns the loop state', async () => {
    const { handlers, client } = setup();
    const input = { session: { startingPoint: 'https://example.com' }, tasks: [{ taskDetails: 'a' }, { taskDetails: 'b', maxDuration: 5000 }] };
    const state = await handlers.startSession({ input });
    expect(state).toStrictEqual({
      sessionId: 'sess-1',
      tasks: [
        { taskDetails: 'a', maxDuration: 300_000 },
        { taskDetails: 'b', maxDuration: 5000 },
      ],
      taskCount: 2,
      index: 0,
      results: [],
    });
    expect(client.startSession).toHaveBeenCalledTimes(1);
    expect(client.startSession).toHaveBeenCalledWith({ startingPoint: 'https://example.com' });
  });

  it.each([
    ['no event', undefined, 'startSession event'],
    ['an array event', [], 'startSession event'],
    ['no input', {}, 'input'],
    ['no tasks', { input: { tasks: [] } }, 'tasks'],
    ['a bad maxDuration', { input: { tasks: [{ taskDetails: 'a', maxDuration: 999_999 }] } }, 'tasks[0].maxDuration'],
    ['an unknown field', { input: { tasks: [{ taskDetails: 'a' }], sesion: {} } }, 'sesion'],
  ])('refuses %s with InvalidInput before the client is ever created', async (_name, event, field) => {
    const { handlers, factory, client } = setup();
    const err = await caught(handlers.startSession(event));
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).field).toBe(field);
    expect(factory).not.toHaveBeenCalled();
    expect(client.startSession).not.toHaveBeenCalled();
  });

  it('propagates a client error unchanged', async () => {
    const { handlers, client } = setup();
    client.startSession.mockRejectedValueOnce(new ApiError('start-session was refused with HTTP 500.'));
    await expect(handlers.startSession({ input: { tasks: [{ taskDetails: 'a' }] } })).rejects.toBeInstanceOf(ApiError);
  });
});

describe('sendTask', () => {
  const event = (over: Record<string, unknown> = {}) => ({ sessionId: 'sess-1', index: 1, task: TASK, results: [completedResult(0, 't-0')], ...over });

  it('sends the task to the session and records a task completed within the call', async () => {
    const { handlers, client, logs } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-9', data: { message: 'in cart' }, usage: { inputTokens: 3, outputTokens: 4, cost: 0.01 } });
    const progress = await handlers.sendTask(event());
    expect(client.sendTask).toHaveBeenCalledWith('sess-1', TASK, []);
    expect(progress).toStrictEqual({
      status: 'completed',
      taskId: 't-9',
      attempt: 0,
      maxAttempts: maxPollAttempts(TASK.maxDuration, PLAN),
      sentAt: expect.any(Number),
      results: [completedResult(0, 't-0'), { index: 1, taskId: 't-9', status: 'completed', result: { message: 'in cart' }, usage: { inputTokens: 3, outputTokens: 4, cost: 0.01 } }],
    });
    expect(logs.some((l) => l.message === 'task completed' && l.fields?.taskIndex === 1)).toBe(true);
  });

  it('a completed task without usage or taskId is recorded with taskId null and no usage key', async () => {
    const { handlers, client } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', data: { message: 'x' } });
    const progress = await handlers.sendTask(event({ results: [] }));
    expect(progress.taskId).toBeNull();
    expect(progress.results).toStrictEqual([{ index: 1, taskId: null, status: 'completed', result: { message: 'x' } }]);
  });

  it('a retried send replaces, never duplicates, the result of the same index', async () => {
    const { handlers, client } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-new', data: { message: 'again' } });
    const progress = await handlers.sendTask(event({ results: [completedResult(0, 't-0'), completedResult(1, 't-old')] }));
    expect(progress.results.map((r) => [r.index, r.taskId])).toEqual([
      [0, 't-0'],
      [1, 't-new'],
    ]);
  });

  it('pending returns attempt 0, maxAttempts from maxPollAttempts and the prior results untouched', async () => {
    const { handlers } = setup();
    const prior = [completedResult(0, 't-0')];
    const before = Date.now();
    const progress = await handlers.sendTask(event({ results: prior }));
    expect(progress).toStrictEqual({ status: 'pending', taskId: 't-1', attempt: 0, maxAttempts: maxPollAttempts(180_000, PLAN), sentAt: expect.any(Number), results: prior });
    // sentAt is when send-message was called: each poll hands it on for the task-duration metric.
    expect(progress.sentAt).toBeGreaterThanOrEqual(before);
    expect(progress.sentAt).toBeLessThanOrEqual(Date.now());
    // (180 s + 60 s grace) / (5 s interval + 6 s hold) → 22 polls
    expect(progress.maxAttempts).toBe(22);
  });

  it('guardrail → Webrun.GuardrailTriggered carrying the question', async () => {
    const { handlers, client, logs } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'guardrail', taskId: 't-1', question: 'I need login credentials', guardrailType: 'human_input_needed' });
    const err = (await caught(handlers.sendTask(event()))) as GuardrailTriggered;
    expect(err).toBeInstanceOf(GuardrailTriggered);
    expect(err.name).toBe('Webrun.GuardrailTriggered');
    expect(err.question).toBe('I need login credentials');
    expect(err.message).toContain('I need login credentials');
    expect(logs.some((l) => l.level === 'warn' && l.fields?.guardrailType === 'human_input_needed')).toBe(true);
  });

  it('failed → Webrun.TaskFailed naming the task and the reason', async () => {
    const { handlers, client } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'failed', taskId: 't-1', reason: 'Navigation blocked' });
    const err = await caught(handlers.sendTask(event()));
    expect(err).toBeInstanceOf(TaskFailed);
    expect(err.name).toBe('Webrun.TaskFailed');
    expect(err.message).toContain('Task 1');
    expect(err.message).toContain('Navigation blocked');
  });

  it.each([
    ['no sessionId', { sessionId: undefined }, 'sendTask event.sessionId'],
    ['a negative index', { index: -1 }, 'sendTask event.index'],
    ['results not an array', { results: {} }, 'sendTask event.results'],
    ['no task', { task: null }, 'sendTask event'],
  ])('refuses a malformed event (%s) before calling the API', async (_n, over, field) => {
    const { handlers, client } = setup();
    const err = await caught(handlers.sendTask(event(over)));
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).field).toBe(field);
    expect(client.sendTask).not.toHaveBeenCalled();
  });
});

describe('pollTask', () => {
  const SENT_AT = 1_700_000_000_000;
  const event = (over: Record<string, unknown> = {}) => ({ sessionId: 'sess-1', index: 0, taskId: 't-1', attempt: 0, maxAttempts: 10, sentAt: SENT_AT, results: [], ...over });

  it(`makes getsPerPoll GETs, sleeping everySeconds between them, then answers pending with attempt+1`, async () => {
    const { handlers, client, sleeps } = setup();
    expect(getsPerPoll(PLAN)).toBe(3);
    const progress = await handlers.pollTask(event({ attempt: 4 }));
    expect(client.getTask).toHaveBeenCalledTimes(3);
    for (const call of client.getTask.mock.calls as unknown[][]) expect(call).toEqual(['sess-1', 't-1']);
    expect(sleeps).toEqual([3000, 3000]);
    expect(progress).toStrictEqual({ status: 'pending', taskId: 't-1', attempt: 5, maxAttempts: 10, sentAt: SENT_AT, results: [] });
  });

  it('returns completed as soon as a later GET completes, without further GETs or sleeps', async () => {
    const { handlers, client, sleeps } = setup();
    client.getTask.mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' }).mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: { message: 'ok' } });
    const prior = [completedResult(0, 't-0')];
    const progress = await handlers.pollTask(event({ index: 1, results: prior }));
    expect(client.getTask).toHaveBeenCalledTimes(2);
    expect(sleeps).toEqual([3000]);
    expect(progress).toStrictEqual({ status: 'completed', taskId: 't-1', attempt: 1, maxAttempts: 10, sentAt: SENT_AT, results: [...prior, { index: 1, taskId: 't-1', status: 'completed', result: { message: 'ok' } }] });
  });

  it('completed on the very last allowed attempt wins over the poll cap', async () => {
    const { handlers, client } = setup();
    client.getTask.mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' }).mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' }).mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: {} });
    await expect(handlers.pollTask(event({ attempt: 9, maxAttempts: 10 }))).resolves.toMatchObject({ status: 'completed', attempt: 10 });
  });

  it('throws PollTimeout exactly when the attempt reaches maxAttempts', async () => {
    const { handlers } = setup();
    await expect(handlers.pollTask(event({ attempt: 8, maxAttempts: 10 }))).resolves.toMatchObject({ status: 'pending', attempt: 9 });
    const err = await caught(handlers.pollTask(event({ attempt: 9, maxAttempts: 10 })));
    expect(err).toBeInstanceOf(PollTimeout);
    expect(err.name).toBe('Webrun.PollTimeout');
    expect(err.message).toContain('10 polls');
  });

  it('guardrail and failure while polling raise their named errors', async () => {
    const { handlers, client } = setup();
    client.getTask.mockResolvedValueOnce({ kind: 'guardrail', question: 'Solve the CAPTCHA' });
    await expect(handlers.pollTask(event())).rejects.toMatchObject({ name: 'Webrun.GuardrailTriggered', question: 'Solve the CAPTCHA' });
    client.getTask.mockResolvedValueOnce({ kind: 'failed', reason: 'Element not found' });
    await expect(handlers.pollTask(event())).rejects.toBeInstanceOf(TaskFailed);
  });

  it('with holdSeconds 0 makes one GET per invocation and never sleeps', async () => {
    const { handlers, client, sleeps } = setup({ ...PLAN, holdSeconds: 0 });
    await handlers.pollTask(event());
    expect(client.getTask).toHaveBeenCalledTimes(1);
    expect(sleeps).toEqual([]);
  });

  it('refuses an event without a taskId before calling the API', async () => {
    const { handlers, client } = setup();
    await expect(handlers.pollTask(event({ taskId: null }))).rejects.toMatchObject({ field: 'pollTask event.taskId' });
    expect(client.getTask).not.toHaveBeenCalled();
  });
});

describe('maxPollAttempts / getsPerPoll', () => {
  it('covers maxDuration plus grace at one poll cycle each, at least 1', () => {
    expect(maxPollAttempts(300_000, DEFAULT_POLL_PLAN)).toBe(Math.ceil(360 / 25));
    expect(maxPollAttempts(1_000, { intervalSeconds: 0, holdSeconds: 0, everySeconds: 0, graceSeconds: 0 })).toBe(1);
    expect(maxPollAttempts(0, { ...PLAN, graceSeconds: 0 })).toBe(1);
  });
  it('GETs: one now, then one every everySeconds within holdSeconds', () => {
    expect(getsPerPoll(DEFAULT_POLL_PLAN)).toBe(7);
    expect(getsPerPoll({ ...PLAN, holdSeconds: 20, everySeconds: 5 })).toBe(5);
    expect(getsPerPoll({ ...PLAN, everySeconds: 0 })).toBe(1);
  });
});

describe('terminateSession', () => {
  it('terminates the session on the success path, with no failure report', async () => {
    const { handlers, client } = setup();
    await expect(handlers.terminateSession({ sessionId: 'sess-1' })).resolves.toStrictEqual({ sessionId: 'sess-1', terminated: true, alreadyEnded: false });
    expect(client.terminateSession).toHaveBeenCalledWith('sess-1');
  });

  it('reports a session that had already ended', async () => {
    const { handlers, client } = setup();
    client.terminateSession.mockResolvedValueOnce({ terminated: false });
    await expect(handlers.terminateSession({ sessionId: 'sess-1' })).resolves.toStrictEqual({ sessionId: 'sess-1', terminated: false, alreadyEnded: true });
  });

  it.each([{}, { sessionId: '' }, { sessionId: 42 }])('with no sessionId (%j) never creates or calls the client', async (ev) => {
    const { handlers, client, factory } = setup();
    await expect(handlers.terminateSession(ev)).resolves.toMatchObject({ sessionId: null, terminated: false, alreadyEnded: false });
    expect(factory).not.toHaveBeenCalled();
    expect(client.terminateSession).not.toHaveBeenCalled();
  });

  it('on the failure path returns the original error and a JSON cause, unwrapping the Lambda error envelope', async () => {
    const { handlers } = setup();
    const results = [completedResult(0, 't-0')];
    const lambdaCause = JSON.stringify({ errorType: 'Webrun.GuardrailTriggered', errorMessage: 'The agent stopped at a guardrail and needs a human: I need login credentials', trace: ['GuardrailTriggered: ...', '    at settle (/var/task/index.js:1:1)'] });
    const outcome = await handlers.terminateSession({ sessionId: 'sess-1', index: 1, results, failure: { Error: 'Webrun.GuardrailTriggered', Cause: lambdaCause } });
    expect(outcome.terminated).toBe(true);
    expect(outcome.error).toBe('Webrun.GuardrailTriggered');
    expect(JSON.parse(outcome.cause!)).toStrictEqual({
      message: 'The agent stopped at a guardrail and needs a human: I need login credentials',
      sessionId: 'sess-1',
      taskIndex: 1,
      completed: results,
    });
    expect(outcome.cause).not.toContain('at settle');
  });

  it('a failure before any session (start failed) still yields a report, with sessionId null', async () => {
    const { handlers, factory } = setup();
    const outcome = await handlers.terminateSession({ failure: { Error: 'Webrun.InvalidInput', Cause: 'tasks: must contain at least one task' } });
    expect(factory).not.toHaveBeenCalled();
    expect(outcome.error).toBe('Webrun.InvalidInput');
    expect(JSON.parse(outcome.cause!)).toStrictEqual({ message: 'tasks: must contain at least one task', sessionId: null, taskIndex: null, completed: [] });
  });

  it('a terminate error propagates (the state machine retries or reports cleanup as unconfirmed)', async () => {
    const { handlers, client } = setup();
    client.terminateSession.mockRejectedValueOnce(new ApiError('terminate got no answer within 15 s.'));
    await expect(handlers.terminateSession({ sessionId: 'sess-1', failure: { Error: 'Webrun.TaskFailed' } })).rejects.toBeInstanceOf(ApiError);
  });
});

describe('failureReport / causeMessage', () => {
  it('causeMessage unwraps { errorType, errorMessage, trace }, keeps a plain string, and fills a missing cause', () => {
    expect(causeMessage(JSON.stringify({ errorType: 'Webrun.TaskFailed', errorMessage: 'Task 2 failed: blocked', trace: [] }))).toBe('Task 2 failed: blocked');
    expect(causeMessage('States.Timeout: the task timed out')).toBe('States.Timeout: the task timed out');
    expect(causeMessage('{"not":"an envelope"}')).toBe('{"not":"an envelope"}');
    expect(causeMessage('null')).toBe('null');
    expect(causeMessage(undefined)).toBe('No cause was given.');
    expect(causeMessage('')).toBe('No cause was given.');
  });

  it('a missing error name defaults to Webrun.ApiError', () => {
    expect(failureReport({ failure: {} }, 's').error).toBe('Webrun.ApiError');
  });

  it('small results are kept whole and not marked truncated', () => {
    const completed = [completedResult(0, 't-0'), completedResult(1, 't-1')];
    const parsed = JSON.parse(failureReport({ failure: { Error: 'E', Cause: 'x' }, index: 2, results: completed }, 's').cause);
    expect(parsed.completed).toStrictEqual(completed);
    expect(parsed.truncated).toBeUndefined();
  });

  it('huge results are truncated under MAX_CAUSE_CHARS with truncated:true, keeping every task index and taskId', () => {
    const completed = Array.from({ length: 5 }, (_, i) => ({ ...completedResult(i, `t-${i}`, { message: 'y'.repeat(20_000) }), usage: { inputTokens: i } }));
    const { cause } = failureReport({ failure: { Error: 'Webrun.PollTimeout', Cause: 'gave up' }, index: 5, results: completed }, 'sess-1');
    expect(cause.length).toBeLessThanOrEqual(MAX_CAUSE_CHARS);
    const parsed = JSON.parse(cause);
    expect(parsed.truncated).toBe(true);
    expect(parsed.message).toBe('gave up');
    expect(parsed.sessionId).toBe('sess-1');
    expect(parsed.taskIndex).toBe(5);
    expect(parsed.completed.map((r: TaskResult) => [r.index, r.taskId, r.status, r.usage?.inputTokens])).toEqual(completed.map((r) => [r.index, r.taskId, 'completed', r.usage.inputTokens]));
    const omitted = parsed.completed.filter((r: TaskResult) => 'omitted' in r.result);
    expect(omitted.length).toBeGreaterThan(0);
    expect(omitted[0].result.omitted).toMatch(/too large/);
    // only as many payloads are dropped as needed: 32k fits one 20k result
    expect(omitted).toHaveLength(4);
  });

  it('drops the largest payload first, so small results survive a single huge one', () => {
    const completed = [completedResult(0, 't-0', { message: 'z'.repeat(40_000) }), completedResult(1, 't-1', { message: 'small 1' }), completedResult(2, 't-2', { message: 'small 2' })];
    const parsed = JSON.parse(failureReport({ failure: { Error: 'E', Cause: 'c' }, index: 3, results: completed }, 's').cause);
    expect(parsed.truncated).toBe(true);
    expect(parsed.completed[0].result.omitted).toMatch(/too large/);
    expect(parsed.completed[1].result).toStrictEqual({ message: 'small 1' });
    expect(parsed.completed[2].result).toStrictEqual({ message: 'small 2' });
  });

  it('a huge message is shortened too, so the cause always fits', () => {
    const envelope = JSON.stringify({ errorType: 'Webrun.ApiError', errorMessage: '"quoted"\n'.repeat(5_000) });
    const { cause } = failureReport({ failure: { Error: 'Webrun.ApiError', Cause: envelope }, index: 0, results: [completedResult(0, 't-0')] }, 's');
    expect(cause.length).toBeLessThanOrEqual(MAX_CAUSE_CHARS);
    const parsed = JSON.parse(cause);
    expect(parsed.truncated).toBe(true);
    expect(parsed.message.startsWith('"quoted"\n')).toBe(true);
    expect(parsed.completed[0].taskId).toBe('t-0');
  });
});

describe('lambda runtime', () => {
  const sm = mockClient(SecretsManagerClient);
  beforeEach(() => {
    sm.reset();
  });

  it('missing WEBRUN_SECRET_ARN → ConfigError on the first client() call (not at load)', async () => {
    const deps = lambdaDeps({});
    const err = await caught(deps.client());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.name).toBe('Webrun.ConfigError');
    expect(err.message).toContain(ENV.secretArn);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('with WEBRUN_SECRET_ARN, builds a WebrunClient from the secret, reading it once per warm container', async () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun-XyZ';
    sm.on(GetSecretValueCommand, { SecretId: arn }).resolves({ SecretString: '{"apiKey":"wr-k-1"}' });
    const deps = lambdaDeps({ [ENV.secretArn]: arn, [ENV.baseUrl]: 'http://127.0.0.1:9' });
    expect(await deps.client()).toBeInstanceOf(WebrunClient);
    expect(await deps.client()).toBeInstanceOf(WebrunClient);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(deps.pollPlan).toStrictEqual(DEFAULT_POLL_PLAN);
  });

  it('pollPlanFromEnv reads the two variables the construct sets and falls back to the defaults', () => {
    expect(pollPlanFromEnv({})).toStrictEqual(DEFAULT_POLL_PLAN);
    expect(pollPlanFromEnv({ [ENV.pollInterval]: '2', [ENV.pollHold]: '0' })).toStrictEqual({ ...DEFAULT_POLL_PLAN, intervalSeconds: 2, holdSeconds: 0 });
    expect(pollPlanFromEnv({ [ENV.pollHold]: '' }).holdSeconds).toBe(DEFAULT_POLL_PLAN.holdSeconds);
  });

  it.each([
    [ENV.pollInterval, '-1'],
    [ENV.pollHold, 'abc'],
    [ENV.pollHold, 'Infinity'],
    [ENV.pollInterval, '5s'],
  ])('pollPlanFromEnv rejects %s=%s with a ConfigError naming the variable', (name, value) => {
    let err: unknown;
    try {
      pollPlanFromEnv({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(name);
    expect((err as Error).message).toContain(JSON.stringify(value));
  });
});

describe('sendTask with site credentials', () => {
  const PASSWORD = 'hunter2-Tr0ub4dor&3-correct-horse';
  const SHOP_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun-sfn/bank-AbCdEf';
  const WITH_REFS: WorkflowTask = {
    ...TASK,
    secrets: [
      { match: '*.shop.example.com', secret: 'webrun-sfn/shop' },
      { match: 'bank.example.com', secret: SHOP_ARN },
    ],
  };
  const STORE: Record<string, Record<string, string>> = {
    'webrun-sfn/shop': { username: 'ada@example.com', password: PASSWORD },
    [SHOP_ARN]: { login: 'ada', pin: '90210' },
  };
  const event = (task: WorkflowTask, over: Record<string, unknown> = {}) => ({ sessionId: 'sess-1', index: 0, task, results: [], ...over });

  function storeResolver() {
    return vi.fn(async (reference: string) => {
      const fields = STORE[reference];
      if (!fields) throw new ConfigError(`The site credentials secret ${reference} does not exist.`);
      return fields;
    });
  }

  it('resolves each reference in order and passes [{ match, fields }] to client.sendTask as the third argument', async () => {
    const resolve = storeResolver();
    const { handlers, client } = setup(PLAN, resolve);
    await expect(handlers.sendTask(event(WITH_REFS))).resolves.toMatchObject({ status: 'pending', taskId: 't-1' });
    expect(resolve.mock.calls.map((c) => c[0])).toEqual(['webrun-sfn/shop', SHOP_ARN]);
    expect(client.sendTask).toHaveBeenCalledTimes(1);
    expect(client.sendTask).toHaveBeenCalledWith('sess-1', WITH_REFS, [
      { match: '*.shop.example.com', fields: { username: 'ada@example.com', password: PASSWORD } },
      { match: 'bank.example.com', fields: { login: 'ada', pin: '90210' } },
    ]);
  });

  it('reads the credentials again on every send (a retried send, the next task)', async () => {
    const resolve = storeResolver();
    const { handlers, client } = setup(PLAN, resolve);
    await handlers.sendTask(event(WITH_REFS));
    await handlers.sendTask(event(WITH_REFS, { index: 1 }));
    expect(resolve).toHaveBeenCalledTimes(4);
    expect(client.sendTask).toHaveBeenCalledTimes(2);
  });

  it('a task without secrets passes [] and never calls the resolver', async () => {
    const resolve = storeResolver();
    const { handlers, client } = setup(PLAN, resolve);
    await handlers.sendTask(event(TASK));
    expect(client.sendTask).toHaveBeenCalledWith('sess-1', TASK, []);
    expect(resolve).not.toHaveBeenCalled();
  });

  it('a resolver failure rejects with that very error and the task is never sent', async () => {
    const resolve = storeResolver();
    const { handlers, client } = setup(PLAN, resolve);
    const task: WorkflowTask = { ...TASK, secrets: [{ match: 'a.com', secret: 'webrun-sfn/shop' }, { match: 'b.com', secret: 'webrun-sfn/missing' }] };
    const err = await caught(handlers.sendTask(event(task)));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.name).toBe('Webrun.ConfigError');
    expect(err.message).toContain('webrun-sfn/missing');
    expect(err.message).not.toContain(PASSWORD);
    expect(client.sendTask).not.toHaveBeenCalled();
  });

  it('any resolver error (e.g. throttling) propagates unchanged, before the send', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    const { handlers, client } = setup(PLAN, async () => {
      throw throttled;
    });
    await expect(handlers.sendTask(event(WITH_REFS))).rejects.toBe(throttled);
    expect(client.sendTask).not.toHaveBeenCalled();
  });

  it('without a configured resolver a task naming credentials fails with Webrun.ConfigError, unsent', async () => {
    const { handlers, client } = setup();
    const err = await caught(handlers.sendTask(event(WITH_REFS)));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('webrun-sfn/shop');
    expect(client.sendTask).not.toHaveBeenCalled();
  });

  it('no log line, and nothing returned, carries a credential value', async () => {
    const resolve = storeResolver();
    const { handlers, client, logs } = setup(PLAN, resolve);
    const pending = await handlers.sendTask(event(WITH_REFS));
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-2', data: { message: 'logged in' }, usage: { inputTokens: 1 } });
    const completed = await handlers.sendTask(event(WITH_REFS, { index: 1 }));
    client.sendTask.mockResolvedValueOnce({ kind: 'guardrail', taskId: 't-3', question: 'Enter the code we texted you', guardrailType: 'human_input_needed' });
    await caught(handlers.sendTask(event(WITH_REFS, { index: 2 })));
    client.sendTask.mockResolvedValueOnce({ kind: 'failed', taskId: 't-4', reason: 'login refused' });
    await caught(handlers.sendTask(event(WITH_REFS, { index: 3 })));
    expect(logs.length).toBeGreaterThanOrEqual(4);
    const logged = JSON.stringify(logs);
    for (const value of [PASSWORD, 'ada@example.com', '90210']) {
      expect(logged).not.toContain(value);
      expect(JSON.stringify(pending)).not.toContain(value);
      expect(JSON.stringify(completed)).not.toContain(value);
    }
  });
});

describe('pollTask with site credentials', () => {
  const PASSWORD = 'pw-POLL-3e9a1c77';
  const task: WorkflowTask = { ...TASK, secrets: [{ match: '*.shop.example.com', secret: 'webrun-sfn/shop' }] };
  const event = (over: Record<string, unknown> = {}) => ({ sessionId: 'sess-1', index: 0, taskId: 't-1', attempt: 0, maxAttempts: 10, sentAt: Date.now(), results: [], task, ...over });
  const resolver = () => vi.fn(async () => ({ username: 'ada', password: PASSWORD }));

  it('reads the credentials only once the task has a final answer, and redacts them from it', async () => {
    const resolve = resolver();
    const { handlers, client } = setup(PLAN, resolve);
    client.getTask
      .mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' })
      .mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: { message: `Logged in with ${PASSWORD}` } });
    const progress = await handlers.pollTask(event());
    expect(resolve).toHaveBeenCalledTimes(1);
    expect(progress.results[0].result).toEqual({ message: 'Logged in with [redacted]' });
  });

  it('redacts a failure reason before it becomes the TaskFailed message', async () => {
    const { handlers, client } = setup(PLAN, resolver());
    client.getTask.mockResolvedValueOnce({ kind: 'failed', taskId: 't-1', reason: `Password ${PASSWORD} was refused` });
    const err = await caught(handlers.pollTask(event()));
    expect(err.name).toBe('Webrun.TaskFailed');
    expect(err.message).toContain('[redacted]');
    expect(err.message).not.toContain(PASSWORD);
  });

  it('does not read any secret while the task is pending, nor for a task without credentials', async () => {
    const resolve = resolver();
    const { handlers, client } = setup(PLAN, resolve);
    await handlers.pollTask(event());
    client.getTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: { message: 'ok' } });
    await handlers.pollTask(event({ task: TASK }));
    expect(resolve).not.toHaveBeenCalled();
  });

  it('fails with the resolver error rather than return an unredacted answer when the secret is gone', async () => {
    const { handlers, client } = setup(PLAN, async () => {
      throw new ConfigError('The site credentials secret webrun-sfn/shop does not exist.');
    });
    client.getTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: { message: PASSWORD } });
    const err = await caught(handlers.pollTask(event()));
    expect(err.name).toBe('Webrun.ConfigError');
    expect(err.message).not.toContain(PASSWORD);
  });
});
