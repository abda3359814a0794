/**
 * Completion by webhook, handler by handler: the send step that stores what resumes the execution, the receiver that
 * treats a doorbell as a hint (nonce, auth, then a GET), the exactly-once resume, and the fallback that takes a task
 * over when its doorbell never rang.
 */
import { describe, expect, it, vi } from 'vitest';
import { DOORBELL_GRACE_SECONDS, WorkflowMetricNames as M, type TaskResult, type WorkflowMetricName } from '../../../lambdas/shared/contract';
import { makeHandlers } from '../../../lambdas/shared/handlers';
import { ResultStoreError } from '../../../lambdas/shared/errors';
import type { ResultStore } from '../../../lambdas/shared/result-store';
import { memorySessionRecords } from '../../../lambdas/shared/session-records';
import type { LoopState, RunState } from '../../../lambdas/shared/state';
import type { TaskTokens } from '../../../lambdas/shared/task-tokens';
import type { TaskOutcome, WorkflowTask } from '../../../lambdas/shared/types';
import { digest, memoryWaitingTasks, waitingKey } from '../../../lambdas/shared/waiting-tasks';
import type { WebrunClient, Webhook } from '../../../lambdas/shared/webrun-client';

const EXECUTION_ARN = 'arn:aws:states:us-east-1:123456789012:execution:WebrunWorkflow:run-7';
const RECEIVER = 'https://abc123.lambda-url.us-east-1.on.aws/';
const TASKS: WorkflowTask[] = [{ taskDetails: 'Search', maxDuration: 60_000 }, { taskDetails: 'Add to cart', maxDuration: 120_000 }];
const run: RunState = { sessionId: 'sess-1', tasks: TASKS, taskCount: 2 };
const loop0: LoopState = { index: 0, status: 'ready', results: [], waitSeconds: 60 + DOORBELL_GRACE_SECONDS };
const event = (token = 'token-1') => ({ executionArn: EXECUTION_ARN, run, loop: loop0, token });

function setup(store: ResultStore = { put: async (key) => `mem://${key}`, get: async () => '{}' }, siteCredentials?: (name: string) => Promise<Record<string, string>>) {
  const sent: Array<{ webhook?: Webhook }> = [];
  const client = {
    sendTask: vi.fn(async (_s: string, _t: WorkflowTask, _c: unknown, webhook?: Webhook): Promise<TaskOutcome> => {
      sent.push({ webhook });
      return { kind: 'pending', taskId: 't-1' };
    }),
    getTask: vi.fn(async (): Promise<TaskOutcome> => ({ kind: 'pending', taskId: 't-1' })),
  };
  const waiting = memoryWaitingTasks();
  const resumed: Array<{ token: string; output?: unknown; error?: string; cause?: string }> = [];
  const taskTokens: TaskTokens = {
    succeed: vi.fn(async (token, output) => (resumed.push({ token, output }), true)),
    fail: vi.fn(async (token, error, cause) => (resumed.push({ token, error, cause }), true)),
  };
  const metrics: WorkflowMetricName[] = [];
  const logs: unknown[] = [];
  const handlers = makeHandlers({
    client: async () => client as unknown as WebrunClient,
    pollPlan: { intervalSeconds: 5, holdSeconds: 0, everySeconds: 3, graceSeconds: 60 },
    results: store,
    placement: { inlineResultBytes: 8192 },
    sessions: memorySessionRecords(),
    sleep: async () => {},
    log: { info: (...a) => logs.push(a), warn: (...a) => logs.push(a), error: (...a) => logs.push(a) },
    metrics: { add: (name) => metrics.push(name) },
    doorbell: { waiting, taskTokens, receiverUrl: RECEIVER },
    ...(siteCredentials ? { siteCredentials } : {}),
  });
  /** The doorbell the API would ring for the task sent last: its URL path and its auth. */
  const bell = () => {
    const webhook = sent.at(-1)!.webhook!;
    return { path: new URL(webhook.url).pathname, auth: webhook.auth };
  };
  const ring = (path: string, auth: string | undefined, method = 'POST') =>
    handlers.receiveDoorbell({ method, path, headers: auth === undefined ? {} : { authorization: `Bearer ${auth}` } });
  return { client, waiting, resumed, taskTokens, handlers, bell, ring, metrics, logs };
}

const completed = (message = 'found 3 keyboards'): TaskOutcome => ({ kind: 'completed', taskId: 't-1', data: { message }, usage: { cost: 0.02 } });
const result0 = (message = 'found 3 keyboards'): TaskResult => ({ index: 0, taskId: 't-1', status: 'completed', result: { message }, usage: { cost: 0.02 } });

describe('send with a doorbell', () => {
  it('stores the waiting task before sending, then sends a just_ping webhook whose URL holds the key and a nonce', async () => {
    const { handlers, client, waiting } = setup();
    let storedBeforeSend = 0;
    client.sendTask.mockImplementationOnce(async () => {
      storedBeforeSend = waiting.all().length;
      return { kind: 'pending', taskId: 't-1' };
    });
    await handlers.sendTask(event());
    expect(storedBeforeSend).toBe(1);
    const webhook = client.sendTask.mock.calls[0][3]!;
    const key = waitingKey(EXECUTION_ARN, 0);
    expect(webhook).toEqual({ name: 'webrun-sfn', url: expect.stringMatching(new RegExp(`^${RECEIVER}${key}/[A-Za-z0-9_-]{43}$`)), auth: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), submittedData: 'just_ping' });
    const [record] = waiting.all();
    expect(record).toMatchObject({ key, token: 'token-1', sessionId: 'sess-1', index: 0, taskId: 't-1', loop: loop0, nextWaitSeconds: 120 + DOORBELL_GRACE_SECONDS });
    // The auth is kept only as a digest; the nonce is the URL's last segment.
    expect(record.authDigest).toBe(digest(webhook.auth));
    expect(JSON.stringify(record)).not.toContain(webhook.auth);
    expect(webhook.url.endsWith(record.nonce)).toBe(true);
  });

  it('a task finished within send-message resumes the execution from the send step, once, with the next loop', async () => {
    const { handlers, client, resumed, waiting } = setup();
    client.sendTask.mockResolvedValueOnce(completed());
    await handlers.sendTask(event());
    expect(resumed).toEqual([{ token: 'token-1', output: { index: 1, status: 'ready', results: [result0()], waitSeconds: 120 + DOORBELL_GRACE_SECONDS } }]);
    expect(waiting.all()).toEqual([]);
  });

  it('a task that ended before its id was stored is caught by one GET after storing it', async () => {
    const { handlers, client, resumed } = setup();
    client.getTask.mockResolvedValueOnce(completed());
    await handlers.sendTask(event());
    expect(client.getTask).toHaveBeenCalledTimes(1);
    expect(resumed).toHaveLength(1);
  });

  it('a send-message that fails removes the waiting record and fails the state (nothing waits for a bell that cannot ring)', async () => {
    const { handlers, client, waiting } = setup();
    client.sendTask.mockRejectedValueOnce(Object.assign(new Error('send-message was refused with HTTP 500.'), { name: 'Webrun.ApiError' }));
    await expect(handlers.sendTask(event())).rejects.toMatchObject({ name: 'Webrun.ApiError' });
    expect(waiting.all()).toEqual([]);
  });
});

describe('the doorbell receiver', () => {
  it('a ring for an ended task resumes the execution once, confirmed by a GET', async () => {
    const { handlers, client, resumed, bell, ring, metrics } = setup();
    await handlers.sendTask(event());
    client.getTask.mockResolvedValueOnce(completed());
    const { path, auth } = bell();
    await expect(ring(path, auth)).resolves.toEqual({ status: 200, body: { outcome: 'resumed' } });
    expect(client.getTask).toHaveBeenLastCalledWith('sess-1', 't-1');
    expect(resumed).toEqual([{ token: 'token-1', output: { index: 1, status: 'ready', results: [result0()], waitSeconds: 120 + DOORBELL_GRACE_SECONDS } }]);
    expect(metrics).toContain(M.doorbellsAnswered);
  });

  it('duplicates and late rings resume nothing more', async () => {
    const { handlers, client, resumed, bell, ring } = setup();
    await handlers.sendTask(event());
    client.getTask.mockResolvedValue(completed());
    const { path, auth } = bell();
    const answers = await Promise.all([ring(path, auth), ring(path, auth), ring(path, auth)]);
    expect(answers.filter((a) => a.body.outcome === 'resumed')).toHaveLength(1);
    await expect(ring(path, auth)).resolves.toMatchObject({ status: 404, body: { outcome: 'unknown' } });
    expect(resumed).toHaveLength(1);
  });

  it.each([
    ['a wrong nonce', (p: string) => p.replace(/[A-Za-z0-9_-]{43}$/, 'A'.repeat(43)), (a: string) => a, 404, 'unknown'],
    ['a wrong key', (p: string) => p.replace(/\/[0-9a-f]{40}\//, `/${'0'.repeat(40)}/`), (a: string) => a, 404, 'unknown'],
    ['no auth', (p: string) => p, () => undefined, 401, 'unauthorized'],
    ['a wrong auth', (p: string) => p, () => 'guess', 401, 'unauthorized'],
    ['a path that is not a doorbell', () => '/doorbell/../../etc/passwd', (a: string) => a, 404, 'unknown'],
  ])('a forged ring with %s is refused before any GET, and resumes nothing', async (_name, forgePath, forgeAuth, status, outcome) => {
    const { handlers, client, resumed, bell, ring, metrics } = setup();
    await handlers.sendTask(event());
    client.getTask.mockClear();
    client.getTask.mockResolvedValue(completed());
    const { path, auth } = bell();
    await expect(ring(forgePath(path), forgeAuth(auth) as string | undefined)).resolves.toEqual({ status, body: { outcome } });
    expect(client.getTask).not.toHaveBeenCalled();
    expect(resumed).toEqual([]);
    expect(metrics).toContain(M.doorbellsIgnored);
  });

  it('a right nonce and auth for a task still running (an early or forged ring) resumes nothing', async () => {
    const { handlers, resumed, bell, ring } = setup();
    await handlers.sendTask(event());
    const { path, auth } = bell();
    await expect(ring(path, auth)).resolves.toEqual({ status: 202, body: { outcome: 'not-ended' } });
    expect(resumed).toEqual([]);
  });

  it('accepts the auth as a raw header value too, and refuses anything but POST', async () => {
    const { handlers, client, bell } = setup();
    await handlers.sendTask(event());
    client.getTask.mockResolvedValue(completed());
    const { path, auth } = bell();
    await expect(handlers.receiveDoorbell({ method: 'GET', path, headers: { authorization: auth } })).resolves.toMatchObject({ status: 405 });
    await expect(handlers.receiveDoorbell({ method: 'POST', path, headers: { Authorization: auth } })).resolves.toMatchObject({ status: 200 });
  });

  it('a guardrail or a failure ending resumes the execution with the named error, as a Lambda would have thrown it', async () => {
    const { handlers, client, resumed, bell, ring } = setup();
    await handlers.sendTask(event());
    client.getTask.mockResolvedValueOnce({ kind: 'guardrail', taskId: 't-1', question: 'Confirm purchase?' });
    const { path, auth } = bell();
    await ring(path, auth);
    expect(resumed).toHaveLength(1);
    expect(resumed[0].error).toBe('Webrun.GuardrailTriggered');
    expect(JSON.parse(resumed[0].cause!)).toEqual({ errorType: 'Webrun.GuardrailTriggered', errorMessage: 'The agent stopped at a guardrail and needs a human: Confirm purchase?' });
  });

  it('a ring before send-message answered is left to the send step (it looks once it knows the task id)', async () => {
    const { handlers, client, waiting, ring } = setup();
    let ringBeforeAnswer: Awaited<ReturnType<typeof ring>> | undefined;
    client.sendTask.mockImplementationOnce(async (_s, _t, _c, webhook) => {
      ringBeforeAnswer = await ring(new URL(webhook!.url).pathname, webhook!.auth);
      return { kind: 'pending', taskId: 't-1' };
    });
    client.getTask.mockResolvedValueOnce(completed());
    await handlers.sendTask(event());
    expect(ringBeforeAnswer).toEqual({ status: 202, body: { outcome: 'not-yet-known' } });
    expect(waiting.all()).toEqual([]);
  });

  it('the auth never reaches a log line', async () => {
    const { handlers, client, bell, ring, logs } = setup();
    await handlers.sendTask(event());
    client.getTask.mockResolvedValue(completed());
    const { path, auth } = bell();
    await ring(path, 'wrong');
    await ring(path, auth);
    expect(JSON.stringify(logs)).not.toContain(auth);
  });
});

/** A result store that refuses its first write with this error (S3's name and message), then takes every write. */
function refusingFirstWrite(name: string, message: string): ResultStore {
  let refusals = 1;
  return {
    put: async (key) => {
      if (refusals-- > 0) throw Object.assign(new Error(message), { name });
      return `mem://${key}`;
    },
    get: async () => '{}',
  };
}

describe('fall back to polling', () => {
  it('takes the task over from its record (a late ring then resumes nothing) and polls it', async () => {
    const { handlers, client, resumed, bell, ring, metrics } = setup();
    await handlers.sendTask(event());
    const { path, auth } = bell();
    client.getTask.mockResolvedValueOnce({ kind: 'pending', taskId: 't-1' });
    const loop = await handlers.pollTask({ executionArn: EXECUTION_ARN, run, loop: loop0, fallback: true });
    expect(loop).toMatchObject({ index: 0, status: 'pending', pending: { taskId: 't-1', attempt: 1 } });
    expect(metrics).toContain(M.webhookFallbacks);
    client.getTask.mockResolvedValue(completed());
    await expect(ring(path, auth)).resolves.toMatchObject({ status: 404 });
    expect(resumed).toEqual([]);
  });

  it('a ring for a task whose result the store refuses resumes nothing: the record stays, and the fallback stores it', async () => {
    const { handlers, client, resumed, bell, ring, waiting, metrics } = setup(refusingFirstWrite('AccessDenied', 'Access Denied'));
    await handlers.sendTask(event());
    const big: TaskOutcome = { kind: 'completed', taskId: 't-1', data: { message: 'x'.repeat(20_000) } };
    client.getTask.mockResolvedValue(big);
    const { path, auth } = bell();
    await expect(ring(path, auth)).resolves.toEqual({ status: 202, body: { outcome: 'not-stored' } });
    expect(resumed).toEqual([]);
    expect(waiting.all()).toHaveLength(1);
    // The wait runs out: polling takes the task over and keeps its result.
    const loop = await handlers.pollTask({ executionArn: EXECUTION_ARN, run, loop: loop0, fallback: true });
    expect(loop.results[0]).toMatchObject({ index: 0, taskId: 't-1', resultRef: { uri: expect.stringMatching(/^mem:\/\//) } });
    // Counted once, when its result was kept.
    expect(metrics.filter((m) => m === M.tasksCompleted)).toHaveLength(1);
  });

  it('a fallback that failed for now is retried by Step Functions with the same input, and the retry still finds the task', async () => {
    const { handlers, client, bell, ring, resumed } = setup(refusingFirstWrite('SlowDown', 'Please reduce your request rate.'));
    await handlers.sendTask(event());
    const { path, auth } = bell();
    // The doorbell was lost; the fallback's first attempt reads the result, which the store refuses once.
    client.getTask.mockResolvedValue({ kind: 'completed', taskId: 't-1', data: { message: 'x'.repeat(20_000) } });
    const fallback = { executionArn: EXECUTION_ARN, run, loop: loop0, fallback: true };
    await expect(handlers.pollTask(fallback)).rejects.toBeInstanceOf(ResultStoreError);
    const loop = await handlers.pollTask(fallback);
    expect(loop.results[0]).toMatchObject({ index: 0, taskId: 't-1', resultRef: { uri: expect.stringMatching(/^mem:\/\//) } });
    // Taken over all the same: a late doorbell resumes nothing.
    await expect(ring(path, auth)).resolves.toMatchObject({ status: 404 });
    expect(resumed).toEqual([]);
  });

  it('a task whose id was never recorded cannot be followed: a named error, not a silent hang', async () => {
    const { handlers } = setup();
    await expect(handlers.pollTask({ executionArn: EXECUTION_ARN, run, loop: loop0, fallback: true })).rejects.toMatchObject({ name: 'Webrun.ApiError', message: expect.stringContaining('never recorded') });
  });
});

describe('no double send, no lost task, no double answer', () => {
  const asked = (question: string): TaskOutcome => ({ kind: 'guardrail', taskId: 't-1', question, guardrailType: 'confirmation' } as TaskOutcome);
  const withRule = (answer: string | { secret: string; field: string }): RunState => ({
    ...run,
    guardrails: { rules: [typeof answer === 'string' ? { when: 'confirm', answer } : { when: 'pin', answerFromSecret: answer }] },
  } as RunState);

  it('a GET that fails after send-message took the task does not fail the send step (its retry would send the task again)', async () => {
    const { handlers, client, waiting } = setup();
    client.getTask.mockRejectedValueOnce(Object.assign(new Error('busy'), { name: 'Webrun.ServiceUnavailable' }));
    await expect(handlers.sendTask(event())).resolves.toBeDefined();
    expect(client.sendTask).toHaveBeenCalledTimes(1);
    // The task id is stored: its doorbell, or the fallback, follows it.
    expect(waiting.all()).toEqual([expect.objectContaining({ taskId: 't-1' })]);
  });

  it('a task that stopped at a question within send-message, answered by a rule, keeps its id for its doorbell and the fallback', async () => {
    const { handlers, client, waiting, resumed } = setup();
    Object.assign(client, { answerGuardrail: vi.fn(async () => undefined) });
    client.sendTask.mockResolvedValueOnce(asked('Please confirm purchase?'));
    await handlers.sendTask({ ...event(), run: withRule('yes') });
    expect(resumed).toEqual([]);
    expect(waiting.all()).toEqual([expect.objectContaining({ taskId: 't-1', answered: [{ question: 'Please confirm purchase?', answeredBy: 'rule' }] })]);
    // Its doorbell is lost: the fallback can still follow it.
    client.getTask.mockResolvedValue(completed());
    const loop = await handlers.pollTask({ executionArn: EXECUTION_ARN, run: withRule('yes'), loop: loop0, fallback: true });
    expect(loop.results[0]).toMatchObject({ index: 0, taskId: 't-1', guardrails: [{ question: 'Please confirm purchase?', answeredBy: 'rule' }] });
  });

  it('two looks at the same question (the send step\'s and a doorbell\'s) answer it once', async () => {
    const { handlers, client, bell, ring } = setup();
    const answerGuardrail = vi.fn(async () => undefined);
    Object.assign(client, { answerGuardrail });
    await handlers.sendTask({ ...event(), run: withRule('yes') });
    client.getTask.mockResolvedValue(asked('Please confirm purchase?'));
    const { path, auth } = bell();
    // Two doorbells at once, both seeing the same question.
    const answers = await Promise.all([ring(path, auth), ring(path, auth)]);
    expect(answerGuardrail).toHaveBeenCalledTimes(1);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
  });

  it('a resume that lands after the wait ran out puts the record back, so the fallback can take the task over', async () => {
    const { handlers, client, taskTokens, waiting, bell, ring } = setup();
    await handlers.sendTask(event());
    vi.mocked(taskTokens.succeed).mockResolvedValueOnce(false);
    client.getTask.mockResolvedValue(completed());
    const { path, auth } = bell();
    await expect(ring(path, auth)).resolves.toEqual({ status: 200, body: { outcome: 'already-resumed' } });
    expect(waiting.all()).toEqual([expect.objectContaining({ taskId: 't-1' })]);
    const loop = await handlers.pollTask({ executionArn: EXECUTION_ARN, run, loop: loop0, fallback: true });
    expect(loop.results).toEqual([result0()]);
  });

  it('a resume Step Functions refuses (throttled) puts the record back: the task completed within send-message is not lost', async () => {
    const { handlers, client, taskTokens, waiting } = setup();
    vi.mocked(taskTokens.succeed).mockRejectedValueOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    client.sendTask.mockResolvedValueOnce(completed());
    await handlers.sendTask(event());
    expect(waiting.all()).toEqual([expect.objectContaining({ taskId: 't-1' })]);
    client.getTask.mockResolvedValue(completed());
    const loop = await handlers.pollTask({ executionArn: EXECUTION_ARN, run, loop: loop0, fallback: true });
    expect(loop.results).toEqual([result0()]);
  });

  it('the fallback keeps the questions rules answered: an answer from a secret the agent repeats is redacted, and listed', async () => {
    const PIN = '99887766';
    const { handlers, client, bell, ring } = setup(undefined, async () => ({ pin: PIN }));
    Object.assign(client, { answerGuardrail: vi.fn(async () => undefined) });
    const pinRule = withRule({ secret: 'webrun-sfn/bank', field: 'pin' });
    await handlers.sendTask({ ...event(), run: pinRule });
    client.getTask.mockResolvedValueOnce(asked('Enter your PIN'));
    const { path, auth } = bell();
    await expect(ring(path, auth)).resolves.toEqual({ status: 200, body: { outcome: 'answered' } });
    // The completion doorbell is lost: the fallback takes over, and the agent repeats the PIN in its result.
    client.getTask.mockResolvedValue(completed(`I typed the PIN ${PIN} and signed in`));
    const loop = await handlers.pollTask({ executionArn: EXECUTION_ARN, run: pinRule, loop: loop0, fallback: true });
    expect(loop.results[0].guardrails).toEqual([{ question: 'Enter your PIN', answeredBy: 'rule' }]);
    expect(JSON.stringify(loop)).not.toContain(PIN);
  });
});

