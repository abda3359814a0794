import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, ConfigError, GuardrailTriggered, InvalidInput, PollTimeout, TaskFailed, Unauthorized } from '../../../lambdas/shared/errors';
import {
  causeMessage,
  failureReport,
  getsPerPoll,
  makeHandlers,
  maxPollAttempts,
  worstCaseHistoryEvents,
  type InvocationContext,
  type Log,
  type QuestionNotice,
  type QuestionNotifier,
} from '../../../lambdas/shared/handlers';
import { DEFAULT_POLL_PLAN, DOORBELL_GRACE_SECONDS, ENV, MAX_CAUSE_CHARS, RESULT_LIMITS, type FailureCause, type PollPlan, type TaskResult, type WorkflowOutput } from '../../../lambdas/shared/contract';
import { lambdaDeps } from '../../../lambdas/shared/lambda-runtime';
import { loadResult, type ResultStore } from '../../../lambdas/shared/result-store';
import { memorySessionRecords } from '../../../lambdas/shared/session-records';
import { pollPlanFromEnv } from '../../../lambdas/shared/settings';
import type { SiteCredentialResolver } from '../../../lambdas/shared/site-credentials';
import { resultKey, type FailureReport, type LoopState, type RunState } from '../../../lambdas/shared/state';
import type { TaskOutcome, WorkflowTask } from '../../../lambdas/shared/types';
import { WebrunClient } from '../../../lambdas/shared/webrun-client';
import { startEmulator } from '../../../local/emulator';
import { caught } from '../../helpers/errors';
import { startScriptedServer } from '../../helpers/http-server';

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
    answerGuardrail: vi.fn(async (_sessionId: string, _taskId: string, _answer: string) => undefined),
    stopTask: vi.fn(async (_sessionId: string) => undefined),
  };
}

/** A result store in memory, keyed by URI. */
function memoryStore(): ResultStore & { objects: Map<string, string> } {
  const objects = new Map<string, string>();
  return {
    objects,
    async put(key, body) {
      const uri = `mem://${key}`;
      objects.set(uri, body);
      return uri;
    },
    async get(uri) {
      const body = objects.get(uri);
      if (body === undefined) throw new Error(`no ${uri}`);
      return body;
    },
  };
}

const EXECUTION_ARN = 'arn:aws:states:us-east-1:123456789012:execution:WebrunWorkflow:run-1';

function setup(plan: PollPlan = PLAN, siteCredentials?: SiteCredentialResolver, inlineResultBytes: number = RESULT_LIMITS.defaultInlineResultBytes, questions?: QuestionNotifier) {
  const client = fakeClient();
  const factory = vi.fn(async (_options?: unknown) => client as unknown as WebrunClient);
  const logs: LogEntry[] = [];
  const log: Log = {
    info: (message, fields) => void logs.push({ level: 'info', message, fields }),
    warn: (message, fields) => void logs.push({ level: 'warn', message, fields }),
    error: (message, fields) => void logs.push({ level: 'error', message, fields }),
  };
  const sleeps: number[] = [];
  const store = memoryStore();
  const sessions = memorySessionRecords();
  const handlers = makeHandlers({
    client: factory, pollPlan: plan, log, sleep: async (ms) => void sleeps.push(ms), siteCredentials,
    results: store, placement: { inlineResultBytes }, sessions, questions,
  });
  return { client, factory, logs, sleeps, handlers, store, sessions };
}

const run = (tasks: WorkflowTask[] = [TASK, TASK, TASK, TASK]): RunState => ({ sessionId: 'sess-1', tasks, taskCount: tasks.length });
const ready = (index: number, results: TaskResult[] = []): LoopState => ({ index, status: 'ready', results });
const pendingLoop = (index: number, over: Partial<NonNullable<LoopState['pending']>> = {}, results: TaskResult[] = []): LoopState => ({
  index, status: 'pending', pending: { taskId: 't-1', attempt: 0, maxAttempts: 10, sentAt: 1_700_000_000_000, ...over }, results,
});


const completedResult = (index: number, taskId: string, result: Record<string, unknown> = { message: `done ${index}` }): TaskResult => ({ index, taskId, status: 'completed', result });

describe('startSession', () => {
  it('refuses, before any session, tasks this deployment\'s poll plan could not follow within 25,000 history events', async () => {
    // pollInterval 1 s with no hold: 360 poll cycles of 9 events for a 5-minute task.
    const eager: PollPlan = { ...DEFAULT_POLL_PLAN, intervalSeconds: 1, holdSeconds: 0 };
    const twenty = { tasks: Array.from({ length: 20 }, (_, i) => ({ taskDetails: `t${i}` })) };
    const { handlers, client } = setup(eager);
    const err = await caught(handlers.startSession({ executionArn: EXECUTION_ARN, input: twenty }));
    expect(err).toBeInstanceOf(InvalidInput);
    expect(err.message).toMatch(/^tasks: could need \d+ history events polled to their maxDuration with this deployment's poll plan \(every 1 s, holding 0 s\), more than the 25000/);
    expect(client.startSession).not.toHaveBeenCalled();
    // The same tasks with the default plan, and fewer with the eager one, are well inside it.
    expect(worstCaseHistoryEvents(twenty.tasks.map(() => ({ maxDuration: 300_000 })), DEFAULT_POLL_PLAN)).toBeLessThan(1_000);
    await expect(setup(eager).handlers.startSession({ executionArn: EXECUTION_ARN, input: { tasks: twenty.tasks.slice(0, 5) } })).resolves.toBeDefined();
  });

  it('validates { input }, starts the session, records it for the execution and returns { run, loop }', async () => {
    const { handlers, client, sessions } = setup();
    const input = { session: { startingPoint: 'https://example.com' }, tasks: [{ taskDetails: 'a' }, { taskDetails: 'b', maxDuration: 5000 }] };
    const state = await handlers.startSession({ executionArn: EXECUTION_ARN, input });
    expect(state).toStrictEqual({
      run: {
        sessionId: 'sess-1',
        tasks: [
          { taskDetails: 'a', maxDuration: 300_000 },
          { taskDetails: 'b', maxDuration: 5000 },
        ],
        taskCount: 2,
      },
      // waitSeconds: how long a doorbell for task 0 is awaited (its 300 s maxDuration plus the grace).
      loop: { index: 0, status: 'ready', results: [], waitSeconds: 300 + DOORBELL_GRACE_SECONDS },
    });
    expect(client.startSession).toHaveBeenCalledTimes(1);
    expect(client.startSession).toHaveBeenCalledWith({ startingPoint: 'https://example.com' });
    // Recorded before the state ends, so a stop that lands now still finds the session.
    expect(await sessions.get(EXECUTION_ARN)).toStrictEqual({ executionArn: EXECUTION_ARN, sessionId: 'sess-1', startedAt: expect.any(Number) });
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

  it('a session it cannot record is terminated at once (nothing could find it later), and the error propagates', async () => {
    const { handlers, client, sessions } = setup();
    const outage = Object.assign(new Error('DynamoDB is down'), { name: 'InternalServerError' });
    sessions.started = vi.fn(async () => {
      throw outage;
    });
    await expect(handlers.startSession({ executionArn: EXECUTION_ARN, input: { tasks: [{ taskDetails: 'a' }] } })).rejects.toBe(outage);
    expect(client.terminateSession).toHaveBeenCalledWith('sess-1');
  });

  it('a session that answers after the cleanup found the execution stopped is terminated by its starter (the cleanup has already looked)', async () => {
    const { handlers, client, sessions, logs } = setup();
    // The execution was stopped while start-session ran; its cleanup found no session and marked it stopped.
    await expect(sessions.stoppedUnlessStarted(EXECUTION_ARN)).resolves.toBeUndefined();
    await expect(handlers.startSession({ executionArn: EXECUTION_ARN, input: { tasks: [{ taskDetails: 'a' }] } })).rejects.toMatchObject({ name: 'SessionStopped' });
    expect(client.terminateSession).toHaveBeenCalledWith('sess-1');
    expect(await sessions.get(EXECUTION_ARN)).toBeUndefined();
    expect(logs.some((l) => l.message === 'the execution was stopped while its session started; terminating it')).toBe(true);
  });
});

describe('sendTask', () => {
  const event = (loop: LoopState = ready(1, [completedResult(0, 't-0')]), tasks?: WorkflowTask[]) => ({ executionArn: EXECUTION_ARN, run: run(tasks), loop });

  it('sends the task at loop.index to the session and records a task completed within the call', async () => {
    const { handlers, client, logs } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-9', data: { message: 'in cart' }, usage: { inputTokens: 3, outputTokens: 4, cost: 0.01 } });
    const loop = await handlers.sendTask(event());
    expect(client.sendTask).toHaveBeenCalledWith('sess-1', TASK, [], undefined, expect.objectContaining({ sessionId: 'sess-1' }));
    expect(loop).toStrictEqual({
      index: 2,
      status: 'ready',
      results: [completedResult(0, 't-0'), { index: 1, taskId: 't-9', status: 'completed', result: { message: 'in cart' }, usage: { inputTokens: 3, outputTokens: 4, cost: 0.01 } }],
      waitSeconds: 180 + DOORBELL_GRACE_SECONDS,
    });
    expect(logs.some((l) => l.message === 'task completed' && l.fields?.taskIndex === 1)).toBe(true);
  });

  it('a completed task without usage or taskId is recorded with taskId null and no usage key', async () => {
    const { handlers, client } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', data: { message: 'x' } });
    const loop = await handlers.sendTask(event(ready(1)));
    expect(loop.results).toStrictEqual([{ index: 1, taskId: null, status: 'completed', result: { message: 'x' } }]);
  });

  it('a retried send replaces, never duplicates, the result of the same index', async () => {
    const { handlers, client } = setup();
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-new', data: { message: 'again' } });
    const loop = await handlers.sendTask(event(ready(1, [completedResult(0, 't-0'), completedResult(1, 't-old')])));
    expect(loop.results.map((r) => [r.index, r.taskId])).toEqual([
      [0, 't-0'],
      [1, 't-new'],
    ]);
  });

  it('pending keeps the index and results, with attempt 0, maxAttempts from maxPollAttempts and the send time', async () => {
    const { handlers } = setup();
    const prior = [completedResult(0, 't-0')];
    const before = Date.now();
    const loop = await handlers.sendTask(event(ready(1, prior)));
    expect(loop).toStrictEqual({ index: 1, status: 'pending', pending: { taskId: 't-1', attempt: 0, maxAttempts: maxPollAttempts(180_000, PLAN), sentAt: expect.any(Number) }, results: prior });
    // sentAt is when send-message was called: each poll hands it on for the task-duration metric.
    expect(loop.pending!.sentAt).toBeGreaterThanOrEqual(before);
    expect(loop.pending!.sentAt).toBeLessThanOrEqual(Date.now());
    // (180 s + 60 s grace) / (5 s interval + 6 s hold) → 22 polls
    expect(loop.pending!.maxAttempts).toBe(22);
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
    // Counted from 1 (the loop is at index 1, the second task), as every line a person reads counts tasks.
    expect(err.message).toBe('Task 2 failed: Navigation blocked');
  });

  it.each([
    ['no run', { run: undefined }, 'sendTask event.run'],
    ['no sessionId', { run: { tasks: [TASK], taskCount: 1 } }, 'sendTask event.run.sessionId'],
    ['a negative index', { loop: { ...ready(0), index: -1 } }, 'sendTask event.loop.index'],
    ['results not an array', { loop: { ...ready(0), results: {} } }, 'sendTask event.loop.results'],
    ['an index past the tasks', { loop: ready(9) }, 'sendTask event.loop.index'],
  ])('refuses a malformed event (%s) before calling the API', async (_n, over, field) => {
    const { handlers, client } = setup();
    const err = await caught(handlers.sendTask({ ...event(), ...over }));
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).field).toBe(field);
    expect(client.sendTask).not.toHaveBeenCalled();
  });
});

describe('results of any size', () => {
  const big = (bytes: number) => ({ message: 'x'.repeat(bytes) });
  const event = (loop: LoopState) => ({ executionArn: EXECUTION_ARN, run: run(), loop });

  it('a result larger than inlineResultBytes is stored and the state carries only its reference', async () => {
    const { handlers, client, store } = setup();
    const data = big(20_000);
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-big', data, usage: { cost: 0.5 } });
    const loop = await handlers.sendTask(event(ready(0)));
    const entry = loop.results[0];
    expect(entry).toStrictEqual({ index: 0, taskId: 't-big', status: 'completed', resultRef: { uri: 'mem://WebrunWorkflow/run-1/task-0.json', bytes: JSON.stringify(data).length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }, usage: { cost: 0.5 } });
    expect(JSON.stringify(loop)).not.toContain('xxxxxxxxxx');
    await expect(loadResult(entry.resultRef!, store)).resolves.toStrictEqual(data);
  });

  it('a result of exactly inlineResultBytes stays inline; one byte more is stored', async () => {
    const { handlers, client } = setup(PLAN, undefined, 100);
    const exactly = big(100 - JSON.stringify(big(0)).length);
    expect(JSON.stringify(exactly)).toHaveLength(100);
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 'a', data: exactly }).mockResolvedValueOnce({ kind: 'completed', taskId: 'b', data: { ...exactly, m: 1 } });
    const first = await handlers.sendTask(event(ready(0)));
    expect(first.results[0].result).toStrictEqual(exactly);
    const second = await handlers.sendTask(event(first));
    expect(second.results[1].resultRef).toBeDefined();
    expect(second.results[1].result).toBeUndefined();
  });

  it(`small results stay inline until the run's ${RESULT_LIMITS.inlineBudgetBytes}-byte budget is spent, then go to the store`, async () => {
    const { handlers, client } = setup();
    let loop = ready(0);
    for (let i = 0; i < 4; i++) {
      client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: `t-${i}`, data: big(6_000) });
      loop = await handlers.sendTask(event(loop));
    }
    expect(loop.results.map((r) => r.resultRef === undefined)).toEqual([true, true, false, false]);
    expect(Buffer.byteLength(JSON.stringify(loop.results.filter((r) => r.result)))).toBeLessThanOrEqual(RESULT_LIMITS.inlineBudgetBytes);
  });

  it('a poll that completes a large task stores it the same way', async () => {
    const { handlers, client } = setup();
    client.getTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: big(50_000) });
    const loop = await handlers.pollTask(event(pendingLoop(0)));
    expect(loop.results[0].resultRef?.bytes).toBe(JSON.stringify(big(50_000)).length);
  });

  it('20 tasks of 200 KiB keep the state small: references only', async () => {
    const { handlers, client } = setup();
    let loop = ready(0);
    const tasks = Array.from({ length: 20 }, (_, i) => ({ taskDetails: `t${i}`, maxDuration: 300_000 }));
    for (let i = 0; i < 20; i++) {
      client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: `t-${i}`, data: big(200 * 1024) });
      loop = await handlers.sendTask({ executionArn: EXECUTION_ARN, run: run(tasks), loop });
    }
    expect(loop.results.every((r) => r.resultRef !== undefined)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify({ run: run(tasks), loop }))).toBeLessThan(16 * 1024);
  });

  describe('a store that refuses a result (the task completed: its result must not be lost)', () => {
    const refused = () => Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });

    it('fails the poll step with Webrun.ResultStoreError, which its Retry covers: polling again stores the result', async () => {
      const { handlers, client, store } = setup();
      vi.spyOn(store, 'put').mockRejectedValueOnce(refused());
      client.getTask.mockResolvedValue({ kind: 'completed', taskId: 't-1', data: big(20_000) });
      const failed = await caught(handlers.pollTask(event(pendingLoop(0))));
      expect(failed).toMatchObject({ name: 'Webrun.ResultStoreError', message: 'The result of task 1 could not be stored: AccessDenied: Access Denied' });
      const retried = await handlers.pollTask(event(pendingLoop(0)));
      expect(retried.results[0]).toMatchObject({ index: 0, taskId: 't-1', resultRef: { bytes: JSON.stringify(big(20_000)).length } });
    });

    it('a task completed within send-message goes to the poll loop instead of failing the send step (which must not be repeated)', async () => {
      const { handlers, client, store } = setup();
      vi.spyOn(store, 'put').mockRejectedValueOnce(refused());
      client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-big', data: big(20_000) });
      const handedOver = await handlers.sendTask(event(ready(0)));
      expect(handedOver).toMatchObject({ index: 0, status: 'pending', pending: { taskId: 't-big', attempt: 0 }, results: [] });
      client.getTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-big', data: big(20_000) });
      const polled = await handlers.pollTask(event(handedOver));
      expect(polled.results[0]).toMatchObject({ index: 0, taskId: 't-big', resultRef: expect.any(Object) });
      expect(client.sendTask).toHaveBeenCalledTimes(1);
    });

    it("after a person's answer, the answer step hands the task to the poll loop too, keeping who answered", async () => {
      const { handlers, client, store } = setup();
      vi.spyOn(store, 'put').mockRejectedValueOnce(refused());
      const asked: LoopState = { ...pendingLoop(0), status: 'question', question: { text: 'Which account?', timeoutSeconds: 60 } };
      client.getTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: big(20_000) });
      const handedOver = await handlers.pollTask({ ...event(asked), answer: { answer: 'the business one' } });
      expect(handedOver).toMatchObject({ status: 'pending', pending: { taskId: 't-1', answered: [{ question: 'Which account?', answeredBy: 'person' }] } });
      expect(client.answerGuardrail).toHaveBeenCalledTimes(1);
    });

    it.each([
      ['a 500 (the state does not retry it: the run would end)', 'Webrun.ApiError'],
      ['a 503 (the state retries it: the answer would be sent again)', 'Webrun.ServiceUnavailable'],
    ])("after a person's answer, a GET that fails for now, %s, hands the task to the poll loop", async (_why, name) => {
      const { handlers, client } = setup();
      const asked: LoopState = { ...pendingLoop(0), status: 'question', question: { text: 'Which account?', timeoutSeconds: 60 } };
      client.getTask.mockRejectedValueOnce(Object.assign(new Error('the API failed for now'), { name }));
      const handedOver = await handlers.pollTask({ ...event(asked), answer: { answer: 'the business one' } });
      expect(handedOver).toMatchObject({ status: 'pending', pending: { taskId: 't-1', answered: [{ question: 'Which account?', answeredBy: 'person' }] } });
      expect(client.answerGuardrail).toHaveBeenCalledTimes(1);
    });
  });
});

describe('pollTask', () => {
  const SENT_AT = 1_700_000_000_000;
  const event = (loop: LoopState = pendingLoop(0, { sentAt: SENT_AT })) => ({ executionArn: EXECUTION_ARN, run: run(), loop });

  it(`makes getsPerPoll GETs, sleeping everySeconds between them, then answers pending with attempt+1`, async () => {
    const { handlers, client, sleeps } = setup();
    expect(getsPerPoll(PLAN)).toBe(3);
    const loop = await handlers.pollTask(event(pendingLoop(0, { attempt: 4, sentAt: SENT_AT })));
    expect(client.getTask).toHaveBeenCalledTimes(3);
    for (const call of client.getTask.mock.calls as unknown[][]) expect(call).toEqual(['sess-1', 't-1']);
    expect(sleeps).toEqual([3000, 3000]);
    expect(loop).toStrictEqual(pendingLoop(0, { attempt: 5, sentAt: SENT_AT }));
  });

  it('returns the next index as soon as a later GET completes, without further GETs or sleeps', async () => {
    const { handlers, client, sleeps } = setup();
    client.getTask.mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' }).mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: { message: 'ok' } });
    const prior = [completedResult(0, 't-0')];
    const loop = await handlers.pollTask(event(pendingLoop(1, {}, prior)));
    expect(client.getTask).toHaveBeenCalledTimes(2);
    expect(sleeps).toEqual([3000]);
    expect(loop).toStrictEqual({ index: 2, status: 'ready', results: [...prior, { index: 1, taskId: 't-1', status: 'completed', result: { message: 'ok' } }], waitSeconds: 180 + DOORBELL_GRACE_SECONDS });
  });

  it('completed on the very last allowed attempt wins over the poll cap', async () => {
    const { handlers, client } = setup();
    client.getTask.mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' }).mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' }).mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: {} });
    await expect(handlers.pollTask(event(pendingLoop(0, { attempt: 9, maxAttempts: 10 })))).resolves.toMatchObject({ status: 'ready', index: 1 });
  });

  it('throws PollTimeout exactly when the attempt reaches maxAttempts', async () => {
    const { handlers } = setup();
    await expect(handlers.pollTask(event(pendingLoop(0, { attempt: 8, maxAttempts: 10 })))).resolves.toMatchObject({ status: 'pending', pending: { attempt: 9 } });
    const err = await caught(handlers.pollTask(event(pendingLoop(0, { attempt: 9, maxAttempts: 10 }))));
    expect(err).toBeInstanceOf(PollTimeout);
    expect(err.name).toBe('Webrun.PollTimeout');
    expect(err.message).toBe('Task 1 was still pending after 10 polls; the workflow gave up on it.');
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

  it('refuses a loop with no pending task before calling the API', async () => {
    const { handlers, client } = setup();
    await expect(handlers.pollTask(event(ready(0)))).rejects.toMatchObject({ field: 'pollTask event.loop' });
    expect(client.getTask).not.toHaveBeenCalled();
  });

  it('stops holding before the invocation runs out of time, answering pending (no Sandbox.Timedout)', async () => {
    // A 50 s poll Lambda, 7 GETs 3 s apart, each GET slow: without the deadline it runs past its timeout.
    let clock = 0;
    const client = fakeClient();
    client.getTask.mockImplementation(async () => {
      clock += 8_000;
      return { kind: 'pending', taskId: 't-1' };
    });
    const handlers = makeHandlers({
      client: async () => client as unknown as WebrunClient, pollPlan: DEFAULT_POLL_PLAN, log: { info() {}, warn() {}, error() {} },
      sleep: async (ms) => void (clock += ms), results: memoryStore(), placement: { inlineResultBytes: 8192 }, sessions: memorySessionRecords(), now: () => clock,
    });
    const ctx: InvocationContext = { remainingMs: () => 50_000 - clock };
    const loop = await handlers.pollTask(event(), ctx);
    expect(loop.status).toBe('pending');
    expect(clock).toBeLessThan(50_000);
    expect(client.getTask.mock.calls.length).toBeLessThan(getsPerPoll(DEFAULT_POLL_PLAN));
  });

  it.each([
    [DEFAULT_POLL_PLAN.holdSeconds, 65_000],
    [30, 45_000],
  ])("after a person's answer that took long, the hold still ends within the poll Lambda's timeout (pollHold %i s + 30 s)", async (holdSeconds, answerMs) => {
    // send-message may hold the answer up to the client's 65 s (its long timeout); the GETs after it (each up to the
    // 15 s call timeout) must not run the invocation past its timeout. Each call, as the client's, ends by its deadline.
    let clock = 0;
    let deadlineAt = Infinity;
    const takes = (ms: number) => void (clock += Math.min(ms, deadlineAt - clock));
    const client = fakeClient();
    client.answerGuardrail.mockImplementation(async () => takes(answerMs));
    client.getTask.mockImplementation(async () => {
      takes(15_000);
      return { kind: 'pending', taskId: 't-1' };
    });
    const plan: PollPlan = { ...DEFAULT_POLL_PLAN, holdSeconds };
    const factory = async (options?: { deadlineAt?: number }) => {
      deadlineAt = options?.deadlineAt ?? Infinity;
      return client as unknown as WebrunClient;
    };
    const handlers = makeHandlers({
      client: factory, pollPlan: plan, log: { info() {}, warn() {}, error() {} },
      sleep: async (ms) => void (clock += ms), results: memoryStore(), placement: { inlineResultBytes: 8192 }, sessions: memorySessionRecords(), now: () => clock,
    });
    const lambdaTimeoutMs = (holdSeconds + 30) * 1000;
    const asked: LoopState = { ...pendingLoop(0), status: 'question', question: { text: 'Which account?', timeoutSeconds: 60 } };
    const loop = await handlers.pollTask({ ...event(asked), answer: { answer: 'the business one' } }, { remainingMs: () => lambdaTimeoutMs - clock });
    expect(loop).toMatchObject({ status: 'pending', pending: { answered: [{ question: 'Which account?', answeredBy: 'person' }] } });
    expect(clock).toBeLessThan(lambdaTimeoutMs);
  });

  it('a failed task the API answers HTTP 200 with success: false ends the run with TaskFailed and its reason, unretried', async () => {
    const server = await startScriptedServer();
    try {
      server.reply({ body: { success: false, sessionId: 'sess-1', taskId: 't-1', status: 'failed', error: 'Out of stock' } });
      const real = new WebrunClient({ baseUrl: server.url, apiKey: 'k', sleep: async () => {} });
      const handlers = makeHandlers({
        client: async () => real, pollPlan: PLAN, log: { info() {}, warn() {}, error() {} },
        sleep: async () => {}, results: memoryStore(), placement: { inlineResultBytes: 8192 }, sessions: memorySessionRecords(),
      });
      const err = await caught(handlers.pollTask(event()));
      expect(err).toBeInstanceOf(TaskFailed);
      expect(err.message).toBe('Task 1 failed: Out of stock');
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('hands the invocation deadline and the stop signal to the client it creates', async () => {
    const { handlers, factory } = setup();
    const signal = new AbortController().signal;
    const before = Date.now();
    await handlers.pollTask(event(), { remainingMs: () => 40_000, signal });
    const options = factory.mock.calls[0][0] as { signal: AbortSignal; deadlineAt: number };
    expect(options.signal).toBe(signal);
    expect(options.deadlineAt).toBeGreaterThan(before + 30_000);
    expect(options.deadlineAt).toBeLessThanOrEqual(Date.now() + 40_000);
  });
});

describe('maxPollAttempts / getsPerPoll', () => {
  it('covers maxDuration plus grace at one poll cycle each, at least 1', () => {
    // The default plan holds long enough for one poll invocation to cover a whole task.
    expect(maxPollAttempts(300_000, DEFAULT_POLL_PLAN)).toBe(1);
    expect(maxPollAttempts(300_000, { ...DEFAULT_POLL_PLAN, intervalSeconds: 5, holdSeconds: 20 })).toBe(Math.ceil(360 / 25));
    expect(maxPollAttempts(1_000, { intervalSeconds: 0, holdSeconds: 0, everySeconds: 0, graceSeconds: 0 })).toBe(1);
    expect(maxPollAttempts(0, { ...PLAN, graceSeconds: 0 })).toBe(1);
  });
  it('locally, with waits scaled down, a task gets as many more polls as keep its real time, never past the history quota', async () => {
    const capAt = async (waitScale: number | undefined, plan: PollPlan, tasks: WorkflowTask[]) => {
      const handlers = makeHandlers({
        client: async () => fakeClient() as unknown as WebrunClient, pollPlan: plan, log: { info() {}, warn() {}, error() {} }, sleep: async () => {},
        results: memoryStore(), placement: { inlineResultBytes: 8192 }, sessions: memorySessionRecords(), waitScale,
      });
      const loop = await handlers.sendTask({ executionArn: EXECUTION_ARN, run: run(tasks), loop: ready(0) });
      return loop.pending!.maxAttempts;
    };
    const task = { taskDetails: 'Slow', maxDuration: 120_000 };
    // The deployed plan: one poll invocation a task; at a tenth of the waits, ten.
    expect(await capAt(undefined, DEFAULT_POLL_PLAN, [task])).toBe(1);
    expect(await capAt(0.1, DEFAULT_POLL_PLAN, [task])).toBe(10);
    expect(await capAt(0, DEFAULT_POLL_PLAN, [task])).toBe(1);
    // A plan that polls every 2 s without holding: 90 polls deployed; at 1/1000 of the waits, as many as fit 25,000 events.
    const naive: PollPlan = { intervalSeconds: 2, holdSeconds: 0, everySeconds: 2, graceSeconds: 60 };
    const scaled = await capAt(0.001, naive, [task]);
    expect(scaled).toBeGreaterThan(90);
    expect(16 + 7 + 9 * scaled).toBeLessThanOrEqual(25_000);
    // Shared among the run's tasks: twenty of them get a twentieth each.
    const twenty = await capAt(0.001, naive, Array.from({ length: 20 }, () => task));
    expect(16 + 20 * (7 + 9 * twenty)).toBeLessThanOrEqual(25_000);
  });

  it('GETs: one now, then one every everySeconds within holdSeconds', () => {
    expect(getsPerPoll(DEFAULT_POLL_PLAN)).toBe(181);
    expect(getsPerPoll({ ...PLAN, holdSeconds: 20, everySeconds: 5 })).toBe(5);
    expect(getsPerPoll({ ...PLAN, everySeconds: 0 })).toBe(1);
  });
});

describe('terminateSession', () => {
  const done = [completedResult(0, 't-0'), completedResult(1, 't-1')];
  const success = () => ({ executionArn: EXECUTION_ARN, run: run([TASK, TASK]), loop: ready(2, done) });
  const failure = (over: Record<string, unknown> = {}) => ({ executionArn: EXECUTION_ARN, run: run(), loop: ready(1, [completedResult(0, 't-0')]), failure: { Error: 'Webrun.TaskFailed', Cause: 'Task 2 failed: blocked' }, ...over });
  const parsed = (report: WorkflowOutput | FailureReport) => JSON.parse((report as FailureReport).cause) as FailureCause;

  it('on the success path ends the session, marks its record and returns the output', async () => {
    const { handlers, client, sessions } = setup();
    await sessions.started(EXECUTION_ARN, 'sess-1');
    await expect(handlers.terminateSession(success())).resolves.toStrictEqual({ sessionId: 'sess-1', tasks: done });
    expect(client.terminateSession).toHaveBeenCalledWith('sess-1');
    expect((await sessions.get(EXECUTION_ARN))?.endedAt).toEqual(expect.any(Number));
  });

  it('on the success path a terminate error propagates: the state machine retries it, then takes the failure path', async () => {
    const { handlers, client } = setup();
    client.terminateSession.mockRejectedValueOnce(new ApiError('terminate got no answer within 15 s.'));
    await expect(handlers.terminateSession(success())).rejects.toBeInstanceOf(ApiError);
  });

  it('on the failure path returns the original error and a JSON cause, unwrapping the Lambda error envelope', async () => {
    const { handlers, sessions } = setup();
    const lambdaCause = JSON.stringify({ errorType: 'Webrun.GuardrailTriggered', errorMessage: 'The agent stopped at a guardrail and needs a human: I need login credentials', trace: ['GuardrailTriggered: ...', '    at settle (/var/task/index.js:1:1)'] });
    const report = await handlers.terminateSession(failure({ failure: { Error: 'Webrun.GuardrailTriggered', Cause: lambdaCause } }));
    expect((report as FailureReport).error).toBe('Webrun.GuardrailTriggered');
    expect(parsed(report)).toStrictEqual({
      message: 'The agent stopped at a guardrail and needs a human: I need login credentials',
      sessionId: 'sess-1',
      taskIndex: 1,
      completed: [completedResult(0, 't-0')],
      sessionEnded: true,
    });
    expect((report as FailureReport).cause).not.toContain('at settle');
    expect((await sessions.get(EXECUTION_ARN))?.endedAt).toEqual(expect.any(Number));
  });

  it('a failure before any session (start failed) still yields a report, with sessionId and sessionEnded null', async () => {
    const { handlers, factory } = setup();
    const report = await handlers.terminateSession({ executionArn: EXECUTION_ARN, failure: { Error: 'Webrun.InvalidInput', Cause: 'tasks: must contain at least one task' } });
    expect(factory).not.toHaveBeenCalled();
    expect((report as FailureReport).error).toBe('Webrun.InvalidInput');
    expect(parsed(report)).toStrictEqual({ message: 'tasks: must contain at least one task', sessionId: null, taskIndex: null, completed: [], sessionEnded: null });
  });

  it('retries a failing terminate itself with backoff, and reports success when a later attempt ends the session', async () => {
    const { handlers, client, sleeps } = setup();
    client.terminateSession.mockRejectedValueOnce(new ApiError('500')).mockRejectedValueOnce(new ApiError('500'));
    const report = await handlers.terminateSession(failure());
    expect(client.terminateSession).toHaveBeenCalledTimes(3);
    expect(sleeps).toEqual([1000, 2000]);
    expect(parsed(report).sessionEnded).toBe(true);
  });

  it('when terminate keeps failing it still reports: the error, every completed result and sessionEnded false', async () => {
    const { handlers, client, sessions } = setup();
    await sessions.started(EXECUTION_ARN, 'sess-1');
    client.terminateSession.mockRejectedValue(new ApiError('terminate failed on the network (ECONNRESET).'));
    const report = await handlers.terminateSession(failure());
    expect(client.terminateSession).toHaveBeenCalledTimes(4);
    expect((report as FailureReport).error).toBe('Webrun.TaskFailed');
    expect(parsed(report)).toStrictEqual({
      message: 'Task 2 failed: blocked', sessionId: 'sess-1', taskIndex: 1, completed: [completedResult(0, 't-0')], sessionEnded: false, cleanupError: 'Webrun.ApiError',
    });
    // The record stays open: the session cleanup will try again.
    expect((await sessions.get(EXECUTION_ARN))?.endedAt).toBeUndefined();
  });

  it('a final terminate error (401 after the key was rotated) is not retried, and the report still comes', async () => {
    const { handlers, client } = setup();
    client.terminateSession.mockRejectedValue(new Unauthorized('terminate was refused with HTTP 401.'));
    const report = await handlers.terminateSession(failure());
    expect(client.terminateSession).toHaveBeenCalledTimes(1);
    expect(parsed(report)).toMatchObject({ sessionEnded: false, cleanupError: 'Webrun.Unauthorized', completed: [completedResult(0, 't-0')] });
  });

  it('stops retrying when the next attempt would not fit in the invocation', async () => {
    const { handlers, client } = setup();
    client.terminateSession.mockRejectedValue(new ApiError('500'));
    await handlers.terminateSession(failure(), { remainingMs: () => 10_000 });
    expect(client.terminateSession).toHaveBeenCalledTimes(1);
  });
});

describe('resultKey', () => {
  const arn = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:WebrunWorkflow:${name}`;

  it('keeps a plain execution name readable in the key', () => {
    expect(resultKey(arn('run-1'), 0)).toBe('WebrunWorkflow/run-1/task-0.json');
  });

  it('gives names that differ only in characters a key cannot hold keys of their own (one run overwrote another\'s results)', () => {
    const names = ['order+42', 'order=42', 'order@42', 'order_42', 'café-ü', 'café-é'];
    const keys = names.map((n) => resultKey(arn(n), 0));
    expect(new Set(keys).size).toBe(names.length);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9/_.-]+$/);
  });
});

describe('failureReport / causeMessage', () => {
  const cleanup = { sessionId: 's', sessionEnded: true };
  const ev = (failure: { Error?: string; Cause?: string }, results: TaskResult[] = [], index = 0) => ({ executionArn: EXECUTION_ARN, run: run(), loop: ready(index, results), failure });

  it('causeMessage unwraps { errorType, errorMessage, trace }, keeps a plain string, and fills a missing cause', () => {
    expect(causeMessage(JSON.stringify({ errorType: 'Webrun.TaskFailed', errorMessage: 'Task 2 failed: blocked', trace: [] }))).toBe('Task 2 failed: blocked');
    expect(causeMessage('States.Timeout: the task timed out')).toBe('States.Timeout: the task timed out');
    expect(causeMessage('{"not":"an envelope"}')).toBe('{"not":"an envelope"}');
    expect(causeMessage('null')).toBe('null');
    expect(causeMessage(undefined)).toBe('No cause was given.');
    expect(causeMessage('')).toBe('No cause was given.');
  });

  it('a missing error name defaults to Webrun.ApiError', async () => {
    expect((await failureReport(ev({}), cleanup, memoryStore())).error).toBe('Webrun.ApiError');
  });

  it('small results are kept whole, inline', async () => {
    const completed = [completedResult(0, 't-0'), completedResult(1, 't-1')];
    const parsedCause = JSON.parse((await failureReport(ev({ Error: 'E', Cause: 'x' }, completed, 2), cleanup, memoryStore())).cause);
    expect(parsedCause.completed).toStrictEqual(completed);
  });

  it('results too large for the cause move to the result store, largest first: every result stays reachable', async () => {
    const store = memoryStore();
    const completed = [completedResult(0, 't-0', { message: 'z'.repeat(40_000) }), completedResult(1, 't-1', { message: 'small 1' }), completedResult(2, 't-2', { message: 'small 2' })];
    const { cause } = await failureReport(ev({ Error: 'E', Cause: 'c' }, completed, 3), cleanup, store);
    expect(cause.length).toBeLessThanOrEqual(MAX_CAUSE_CHARS);
    const parsedCause = JSON.parse(cause) as FailureCause;
    expect(parsedCause.completed[0].result).toBeUndefined();
    await expect(loadResult(parsedCause.completed[0].resultRef!, store)).resolves.toStrictEqual({ message: 'z'.repeat(40_000) });
    expect(parsedCause.completed[1].result).toStrictEqual({ message: 'small 1' });
    expect(parsedCause.completed[2].result).toStrictEqual({ message: 'small 2' });
  });

  it('the tasks\' lists of answered questions go when the results by reference are still too long for a cause', async () => {
    const answered = Array.from({ length: 20 }, (_, i) => ({ question: `Confirm step ${i}: ${'q'.repeat(190)}`, answeredBy: 'rule' as const }));
    const completed = Array.from({ length: 19 }, (_, i) => ({ ...completedResult(i, `t-${i}`), guardrails: answered }));
    const { cause } = await failureReport({ executionArn: EXECUTION_ARN, run: { ...run(), tasks: Array.from({ length: 20 }, () => ({ taskDetails: 'x', maxDuration: 300_000 })), taskCount: 20 }, loop: ready(19, completed), failure: { Error: 'E', Cause: 'c' } }, cleanup, memoryStore());
    expect(cause.length).toBeLessThanOrEqual(MAX_CAUSE_CHARS);
    const parsedCause = JSON.parse(cause) as FailureCause;
    // Every result is still there (by reference or inline); only the lists went.
    expect(parsedCause.completed.map((r) => r.index)).toEqual(completed.map((r) => r.index));
    expect(parsedCause.completed.every((r) => r.guardrails === undefined)).toBe(true);
  });

  it('a huge message is shortened, so the cause always fits', async () => {
    const envelope = JSON.stringify({ errorType: 'Webrun.ApiError', errorMessage: '"quoted"\n'.repeat(5_000) });
    const { cause } = await failureReport(ev({ Error: 'Webrun.ApiError', Cause: envelope }, [completedResult(0, 't-0')]), cleanup, memoryStore());
    expect(cause.length).toBeLessThanOrEqual(MAX_CAUSE_CHARS);
    const parsedCause = JSON.parse(cause);
    expect(parsedCause.message.startsWith('"quoted"\n')).toBe(true);
    expect(parsedCause.completed[0].taskId).toBe('t-0');
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

  it('a 401 with the cached key reads the secret again, past the cache, and tries once more with a rotated key', async () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun-Rot';
    sm.on(GetSecretValueCommand, { SecretId: arn }).resolvesOnce({ SecretString: '{"apiKey":"wr-old-key"}' }).resolves({ SecretString: '{"apiKey":"wr-new-key"}' });
    const api = await startEmulator({ apiKey: 'wr-new-key' });
    try {
      const deps = lambdaDeps({ [ENV.secretArn]: arn, [ENV.baseUrl]: api.url });
      // Warm: the old key is cached, as in a container that read it before the rotation.
      await deps.client();
      const session = await (await deps.client()).startSession({});
      expect(session.sessionId).toEqual(expect.any(String));
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
      expect(api.ledger().requests.map((r) => r.authorization)).toEqual(['invalid', 'valid']);
      // A key that did not change is not tried twice: the 401 stands.
      sm.reset();
      sm.on(GetSecretValueCommand).resolves({ SecretString: '{"apiKey":"wr-revoked"}' });
      const stale = lambdaDeps({ [ENV.secretArn]: arn, [ENV.baseUrl]: api.url });
      await expect((await stale.client()).startSession({})).rejects.toMatchObject({ name: 'Webrun.Unauthorized' });
    } finally {
      await api.close();
    }
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
  const event = (task: WorkflowTask, over: { index?: number } = {}) => ({ executionArn: EXECUTION_ARN, run: run([task, task, task, task]), loop: ready(over.index ?? 0) });

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
    await expect(handlers.sendTask(event(WITH_REFS))).resolves.toMatchObject({ status: 'pending', pending: { taskId: 't-1' } });
    expect(resolve.mock.calls.map((c) => c[0])).toEqual(['webrun-sfn/shop', SHOP_ARN]);
    expect(client.sendTask).toHaveBeenCalledTimes(1);
    expect(client.sendTask).toHaveBeenCalledWith('sess-1', WITH_REFS, [
      { match: '*.shop.example.com', fields: { username: 'ada@example.com', password: PASSWORD } },
      { match: 'bank.example.com', fields: { login: 'ada', pin: '90210' } },
    ], undefined, expect.objectContaining({ sessionId: 'sess-1' }));
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
    expect(client.sendTask).toHaveBeenCalledWith('sess-1', TASK, [], undefined, expect.objectContaining({ sessionId: 'sess-1' }));
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

  it('a task completed within send-message whose earlier task\'s secrets cannot be read for now goes to the poll loop, not lost', async () => {
    let reads = 0;
    const { handlers, client } = setup(PLAN, async (reference) => {
      // Task 1's send reads its two secrets; the next read (task 2's answer, redacted of task 1's credentials) is throttled.
      if (reads++ === 2) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { attempts: 3 } });
      return STORE[reference];
    });
    const first = await handlers.sendTask(event(WITH_REFS));
    expect(first.status).toBe('pending');
    client.sendTask.mockResolvedValueOnce({ kind: 'completed', taskId: 't-2', data: { message: 'order #123 placed' } });
    const loop = await handlers.sendTask({ executionArn: EXECUTION_ARN, run: run([WITH_REFS, TASK]), loop: ready(1, [completedResult(0, 't-1')]) });
    expect(loop).toMatchObject({ index: 1, status: 'pending', pending: { taskId: 't-2' } });
    expect(client.sendTask).toHaveBeenCalledTimes(2);
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
  const event = (over: { task?: WorkflowTask } = {}) => ({ executionArn: EXECUTION_ARN, run: run([over.task ?? task]), loop: pendingLoop(0, { sentAt: Date.now() }) });
  const resolver = () => vi.fn(async () => ({ username: 'ada', password: PASSWORD }));

  it('reads the credentials only once the task has a final answer, and redacts them from it', async () => {
    const resolve = resolver();
    const { handlers, client } = setup(PLAN, resolve);
    client.getTask
      .mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' })
      .mockResolvedValueOnce({ kind: 'completed', taskId: 't-1', data: { message: `Logged in with ${PASSWORD}` } });
    const loop = await handlers.pollTask(event());
    expect(resolve).toHaveBeenCalledTimes(1);
    expect(loop.results[0].result).toEqual({ message: 'Logged in with [redacted]' });
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

  it('a secret that cannot be read for now (Secrets Manager throttled) leaves the completed task to the next poll', async () => {
    const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400, attempts: 3 } });
    let reads = 0;
    const { handlers, client } = setup(PLAN, async () => {
      if (reads++ === 0) throw throttled();
      return { username: 'ada', password: PASSWORD };
    });
    client.getTask.mockResolvedValue({ kind: 'completed', taskId: 't-1', data: { message: `Logged in with ${PASSWORD}` } });
    const loop = await handlers.pollTask(event());
    expect(loop).toMatchObject({ status: 'pending', pending: { attempt: 1 } });
    expect(JSON.stringify(loop)).not.toContain(PASSWORD);
    const next = await handlers.pollTask({ ...event(), loop });
    expect(next.results[0].result).toEqual({ message: 'Logged in with [redacted]' });
  });

  it('an API error that quotes a credential leaves the step redacted, message and stack (they reach logs and history)', async () => {
    const { handlers, client } = setup(PLAN, resolver());
    client.getTask.mockRejectedValueOnce(new ApiError(`get-task was refused with HTTP 400 INVALID_REQUEST: field password has invalid value ${PASSWORD} for user ada.`));
    const err = await caught(handlers.pollTask(event()));
    expect(err.name).toBe('Webrun.ApiError');
    expect(err.message).toContain('field password has invalid value [redacted] for user [redacted].');
    expect(`${err.message}${err.stack}`).not.toContain(PASSWORD);
  });

  it('a later task\'s error that quotes an earlier task\'s credential is redacted too; one that cannot be checked is withheld', async () => {
    const { handlers, client } = setup(PLAN, resolver());
    const later = { executionArn: EXECUTION_ARN, run: run([task, TASK]), loop: ready(1, [completedResult(0, 't-1')]) };
    client.sendTask.mockRejectedValueOnce(new ApiError(`send-message was refused with HTTP 400: the agent memory holds ${PASSWORD}.`));
    const err = await caught(handlers.sendTask(later));
    expect(err.message).toBe('send-message was refused with HTTP 400: the agent memory holds [redacted].');
    // The secret is gone now: the message cannot be checked, so it does not leave.
    const { handlers: unreadable, client: other } = setup(PLAN, async () => {
      throw new ConfigError('The site credentials secret webrun-sfn/shop does not exist.');
    });
    other.terminateSession.mockRejectedValueOnce(new ApiError(`terminate was refused: ${PASSWORD}`));
    const withheld = await caught(unreadable.terminateSession({ ...later, loop: ready(2, [completedResult(0, 't-1'), completedResult(1, 't-2')]) }));
    expect(withheld.name).toBe('Webrun.ApiError');
    expect(withheld.message).toContain('withheld');
    expect(`${withheld.message}${withheld.stack}`).not.toContain(PASSWORD);
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

describe('guardrails and budgets', () => {
  const guardrail = (question: string): TaskOutcome => ({ kind: 'guardrail', taskId: 't-1', question });
  const completed = (data: Record<string, unknown>, cost = 0.01): TaskOutcome => ({ kind: 'completed', taskId: 't-1', data, usage: { inputTokens: 100, outputTokens: 10, cost } });
  const withRules = (guardrails: WorkflowTask['guardrails'], extra: Partial<RunState> = {}): RunState => ({ ...run([TASK]), ...(guardrails ? { guardrails } : {}), ...extra });
  const event = (loop: LoopState, state: RunState = run([TASK])) => ({ executionArn: EXECUTION_ARN, run: state, loop });

  it('a rule answers the question while polling, the same task is followed to its end, and the output says a rule answered', async () => {
    const { handlers, client } = setup();
    client.getTask.mockResolvedValueOnce(guardrail('Please confirm purchase?')).mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' }).mockResolvedValueOnce(completed({ ordered: true }));
    const loop = await handlers.pollTask(event(pendingLoop(0), withRules({ rules: [{ when: 'confirm purchase', answer: 'yes' }] })));
    expect(client.answerGuardrail).toHaveBeenCalledExactlyOnceWith('sess-1', 't-1', 'yes');
    expect(loop.results).toEqual([expect.objectContaining({ index: 0, status: 'completed', result: { ordered: true }, guardrails: [{ question: 'Please confirm purchase?', answeredBy: 'rule' }] })]);
  });

  it('a GET that fails after a rule answered in the same poll keeps the answer: the step is not repeated, maxAnswers holds', async () => {
    const { handlers, client } = setup();
    const rules = withRules({ rules: [{ when: 'confirm', answer: 'yes' }], maxAnswers: 1 });
    client.getTask.mockResolvedValueOnce(guardrail('Please confirm the order')).mockRejectedValueOnce(new ApiError('get-task was refused with HTTP 500.'));
    // Not thrown: Step Functions would retry the step with its input, which does not know the answer was sent.
    const loop = await handlers.pollTask(event(pendingLoop(0), rules));
    expect(loop).toMatchObject({ status: 'pending', pending: { attempt: 1, answered: [{ question: 'Please confirm the order', answeredBy: 'rule' }] } });
    // The next poll sees the second question: one answer was allowed, and it was given.
    client.getTask.mockResolvedValueOnce(guardrail('Please confirm the payment'));
    await expect(handlers.pollTask(event(loop, rules))).rejects.toMatchObject({ name: 'Webrun.GuardrailTriggered' });
    expect(client.answerGuardrail).toHaveBeenCalledTimes(1);
  });

  it('answers a question that comes inline with send-message, then polls the task', async () => {
    const { handlers, client } = setup();
    client.sendTask.mockResolvedValueOnce(guardrail('Confirm purchase?'));
    const loop = await handlers.sendTask(event(ready(0), withRules({ rules: [{ when: 'confirm', answer: 'yes' }] })));
    expect(client.answerGuardrail).toHaveBeenCalledExactlyOnceWith('sess-1', 't-1', 'yes');
    expect(loop).toMatchObject({ status: 'pending', pending: { taskId: 't-1', answered: [{ question: 'Confirm purchase?', answeredBy: 'rule' }] } });
  });

  it('a refused answer is not the end: the question is looked at again and answered on the next GET', async () => {
    const { handlers, client } = setup();
    client.answerGuardrail.mockRejectedValueOnce(new ApiError('send-message was refused with HTTP 500.'));
    client.getTask.mockResolvedValueOnce(guardrail('Confirm purchase?')).mockResolvedValueOnce(guardrail('Confirm purchase?')).mockResolvedValueOnce(completed({ ok: 1 }));
    const loop = await handlers.pollTask(event(pendingLoop(0), withRules({ rules: [{ when: 'confirm', answer: 'yes' }] })));
    expect(client.answerGuardrail).toHaveBeenCalledTimes(2);
    expect(loop.results[0]).toMatchObject({ status: 'completed', guardrails: [{ answeredBy: 'rule' }] });
  });

  it('an answer refused for good (401) ends the run with that error', async () => {
    const { handlers, client } = setup();
    client.answerGuardrail.mockRejectedValueOnce(new Unauthorized('The API key was refused.'));
    client.getTask.mockResolvedValueOnce(guardrail('Confirm purchase?'));
    expect((await caught(handlers.pollTask(event(pendingLoop(0), withRules({ rules: [{ when: 'confirm', answer: 'yes' }] }))))).name).toBe('Webrun.Unauthorized');
  });

  it('redacts a plain secret the agent repeats in its answer, and never records the answer itself', async () => {
    const read: SiteCredentialResolver = vi.fn(async () => ({ pin: '98765' }));
    const { handlers, client, logs } = setup(PLAN, read);
    client.getTask.mockResolvedValueOnce(guardrail('Enter your PIN')).mockResolvedValueOnce(completed({ message: 'Logged in with PIN 98765' }));
    const loop = await handlers.pollTask(event(pendingLoop(0), withRules({ rules: [{ when: 'pin', answerFromSecret: { secret: 'webrun-sfn/bank', field: 'pin' } }] })));
    expect(client.answerGuardrail).toHaveBeenCalledWith('sess-1', 't-1', '98765');
    expect(JSON.stringify(loop)).not.toContain('98765');
    expect(loop.results[0].result).toEqual({ message: 'Logged in with PIN [redacted]' });
    expect(JSON.stringify(logs)).not.toContain('98765');
  });

  it('without a matching rule or `ask`, a question still ends the run with GuardrailTriggered carrying it', async () => {
    const { handlers, client } = setup();
    client.getTask.mockResolvedValueOnce(guardrail('Solve the CAPTCHA'));
    const err = await caught(handlers.pollTask(event(pendingLoop(0), withRules({ rules: [{ when: 'confirm', answer: 'yes' }] }))));
    expect(err).toBeInstanceOf(GuardrailTriggered);
    expect(err).toMatchObject({ question: 'Solve the CAPTCHA', message: expect.stringContaining('no rule answers it') });
    expect(client.answerGuardrail).not.toHaveBeenCalled();
  });

  it('with `ask`, the loop waits at the question; Ask a person tells the notifier with the live view and the deadline', async () => {
    const notices: QuestionNotice[] = [];
    const { handlers, client, sessions } = setup(PLAN, undefined, undefined, { notify: async (n) => void notices.push(n) });
    client.startSession.mockResolvedValueOnce({ sessionId: 'sess-1', balance: 10, liveViewUrl: 'https://live.example/view?k=secret-view' } as never);
    await handlers.startSession({ executionArn: EXECUTION_ARN, input: { tasks: [{ taskDetails: 'a' }] } });
    expect((await sessions.get(EXECUTION_ARN))?.liveViewUrl).toBe('https://live.example/view?k=secret-view');
    client.getTask.mockResolvedValueOnce(guardrail('Which account?'));
    const asked = await handlers.pollTask(event(pendingLoop(0), withRules({ ask: { timeoutSeconds: 60 } })));
    expect(asked).toMatchObject({ status: 'question', question: { text: 'Which account?', timeoutSeconds: 60 }, pending: { taskId: 't-1' } });
    expect(JSON.stringify(asked)).not.toContain('secret-view');

    await handlers.askPerson({ ...event(asked, withRules({ ask: { timeoutSeconds: 60 } })), token: 'task-token-1' });
    expect(notices).toEqual([expect.objectContaining({ executionArn: EXECUTION_ARN, taskIndex: 0, question: 'Which account?', liveViewUrl: 'https://live.example/view?k=secret-view', token: 'task-token-1' })]);
    expect(Date.parse(notices[0].deadline)).toBeGreaterThan(Date.now() + 50_000);
  });

  it('a person\'s answer goes to the API, and the task is followed again, answered by "person"', async () => {
    const { handlers, client } = setup();
    const asked: LoopState = { ...pendingLoop(0), status: 'question', question: { text: 'Which account?', timeoutSeconds: 60 } };
    client.getTask.mockResolvedValueOnce(completed({ account: 'business' }));
    const loop = await handlers.pollTask({ ...event(asked, withRules({ ask: { timeoutSeconds: 60 } })), answer: { answer: 'the business one' } });
    expect(client.answerGuardrail).toHaveBeenCalledExactlyOnceWith('sess-1', 't-1', 'the business one');
    expect(loop.results[0]).toMatchObject({ status: 'completed', guardrails: [{ question: 'Which account?', answeredBy: 'person' }] });
    expect(JSON.stringify(loop)).not.toContain('the business one');
  });

  it.each([[{}], [{ answer: '  ' }], [{ answer: 7 }]])('refuses a person\'s answer %j with InvalidInput before calling the API', async (answer) => {
    const { handlers, client } = setup();
    const asked: LoopState = { ...pendingLoop(0), status: 'question', question: { text: 'Which account?', timeoutSeconds: 60 } };
    expect(await caught(handlers.pollTask({ ...event(asked), answer }))).toBeInstanceOf(InvalidInput);
    expect(client.answerGuardrail).not.toHaveBeenCalled();
  });

  it('a running cost over maxCostUsd stops the task and raises BudgetExceeded; under it the task goes on', async () => {
    const { handlers, client } = setup();
    const budget = withRules(undefined, { maxCostUsd: 0.05 });
    client.getTask.mockResolvedValueOnce({ kind: 'pending', taskId: 't-1', usage: { inputTokens: 1, outputTokens: 1, cost: 0.02 } });
    client.getTask.mockResolvedValueOnce({ kind: 'pending', taskId: 't-1', usage: { inputTokens: 1, outputTokens: 1, cost: 0.04 } });
    const still = await handlers.pollTask(event(pendingLoop(0, {}, [completedResult(9, 'earlier')]), budget));
    expect(still.status).toBe('pending');
    expect(client.stopTask).not.toHaveBeenCalled();

    // Completed tasks count too: 0.03 spent before + 0.03 running > 0.05.
    const spent: TaskResult = { ...completedResult(0, 't-0'), usage: { inputTokens: 1, outputTokens: 1, cost: 0.03 } };
    client.getTask.mockReset().mockResolvedValue({ kind: 'pending', taskId: 't-1', usage: { inputTokens: 1, outputTokens: 1, cost: 0.03 } });
    const err = await caught(handlers.pollTask(event(pendingLoop(1, {}, [spent]), { ...budget, tasks: [TASK, TASK], taskCount: 2 })));
    expect(err).toMatchObject({ name: 'Webrun.BudgetExceeded', message: expect.stringContaining('$0.0600') });
    expect(client.stopTask).toHaveBeenCalledExactlyOnceWith('sess-1');
  });

  it('no task starts once the completed ones have spent the budget', async () => {
    const { handlers, client } = setup();
    const spent: TaskResult = { ...completedResult(0, 't-0'), usage: { inputTokens: 1, outputTokens: 1, cost: 0.6 } };
    const err = await caught(handlers.sendTask(event(ready(1, [spent]), { ...run([TASK, TASK]), maxCostUsd: 0.5 })));
    expect(err).toMatchObject({ name: 'Webrun.BudgetExceeded' });
    expect(client.sendTask).not.toHaveBeenCalled();
  });

  it('a stop that fails does not hide BudgetExceeded', async () => {
    const { handlers, client } = setup();
    client.stopTask.mockRejectedValueOnce(new ApiError('500'));
    client.getTask.mockResolvedValue({ kind: 'pending', taskId: 't-1', usage: { inputTokens: 1, outputTokens: 1, cost: 1 } });
    expect((await caught(handlers.pollTask(event(pendingLoop(0), withRules(undefined, { maxCostUsd: 0.5 }))))).name).toBe('Webrun.BudgetExceeded');
  });

  it('a balance under minBalanceUsd ends the new session at once and raises InsufficientBalance', async () => {
    const { handlers, client, sessions } = setup();
    client.startSession.mockResolvedValueOnce({ sessionId: 'sess-1', balance: 1.5 });
    const err = await caught(handlers.startSession({ executionArn: EXECUTION_ARN, input: { session: { minBalanceUsd: 2 }, tasks: [{ taskDetails: 'a' }] } }));
    expect(err).toMatchObject({ name: 'Webrun.InsufficientBalance', message: expect.stringContaining('$1.5') });
    expect(client.terminateSession).toHaveBeenCalledExactlyOnceWith('sess-1');
    expect((await sessions.get(EXECUTION_ARN))?.endedAt).toEqual(expect.any(Number));
  });

  it('the success output carries the run\'s usage total', async () => {
    const { handlers } = setup();
    const results = [0, 1].map((i) => ({ ...completedResult(i, `t-${i}`), usage: { inputTokens: 100 * (i + 1), outputTokens: 10, cost: 0.1 + i * 0.2 } }));
    const output = (await handlers.terminateSession({ ...event({ index: 2, status: 'ready', results }, run([TASK, TASK])) })) as WorkflowOutput;
    expect(output.usage).toEqual({ inputTokens: 300, outputTokens: 20, cost: 0.4 });
  });
});
