import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  BadRequest,
  InsufficientBalance,
  InvalidInput,
  RateLimited,
  ServiceUnavailable,
  SessionExpired,
  SessionLimitReached,
  TaskFailed,
  Unauthorized,
  UnexpectedResponse,
  WebrunError,
} from '../../../lambdas/shared/errors';
import type { SiteCredentials, WorkflowTask } from '../../../lambdas/shared/types';
import { parseRetryAfter, readUsage, WebrunClient, type WebrunClientOptions } from '../../../lambdas/shared/webrun-client';
import { closedPort, startScriptedServer, type ScriptedReply, type ScriptedServer } from '../../helpers/http-server';
import { caught as caughtError } from '../../helpers/errors';
const caught = (p: Promise<unknown>) => caughtError<WebrunError>(p);

const KEY = 'wr-live-9c1f7e2d4b6a8035';
const TASK: WorkflowTask = { taskDetails: 'Search for "wireless keyboard"', maxDuration: 180_000 };

let server: ScriptedServer;
let sleeps: number[];

beforeEach(async () => {
  server = await startScriptedServer();
  sleeps = [];
});
afterEach(async () => {
  await server.close();
});

function client(opts: Partial<WebrunClientOptions> = {}): WebrunClient {
  return new WebrunClient({
    baseUrl: server.url,
    apiKey: KEY,
    callTimeoutMs: 2_000,
    longCallTimeoutMs: 2_000,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...opts,
  });
}


function expectNoKey(err: unknown): void {
  const e = err as Error;
  expect(e.message).not.toContain(KEY);
  expect(String(e.stack)).not.toContain(KEY);
  expect(JSON.stringify(e)).not.toContain(KEY);
  expect(String(e)).not.toContain(KEY);
}

describe('constructor', () => {
  it('rejects a baseUrl that is not a URL, naming the field', () => {
    expect(() => new WebrunClient({ baseUrl: 'not a url', apiKey: KEY })).toThrow(InvalidInput);
    try {
      new WebrunClient({ baseUrl: 'not a url', apiKey: KEY });
    } catch (err) {
      expect((err as InvalidInput).field).toBe('baseUrl');
      expect((err as InvalidInput).name).toBe('Webrun.InvalidInput');
    }
  });

  it('rejects a non-http(s) baseUrl', () => {
    expect(() => new WebrunClient({ baseUrl: 'ftp://connect.webrun.ai', apiKey: KEY })).toThrow(/http/);
    expect(() => new WebrunClient({ baseUrl: 'file:///etc/passwd', apiKey: KEY })).toThrow(InvalidInput);
  });

  it('rejects an empty API key with Webrun.Unauthorized', () => {
    expect(() => new WebrunClient({ baseUrl: 'https://connect.webrun.ai', apiKey: '' })).toThrow(Unauthorized);
  });

  it('keeps a path prefix of the baseUrl and drops its trailing slash', async () => {
    server.reply({ body: { success: true, sessionId: 's-1' } });
    await client({ baseUrl: `${server.url}/v1/` }).startSession({});
    expect(server.requests[0].path).toBe('/v1/start/start-session');
  });
});

describe('requests sent', () => {
  it('startSession: POST /start/start-session with Bearer auth, mode "default" and an empty initialTask carrying the session options', async () => {
    server.reply({ body: { success: true, sessionId: 'sess-1', expiresIn: 300, balance: 12.5, socketURL: 'wss://x' } });
    const started = await client().startSession({
      startingPoint: 'https://example.com',
      profileId: 'prof-1',
      avoidDomains: ['x.com'],
      maxInputTokens: 1000,
      maxOutputTokens: 2000,
    });
    expect(started).toEqual({ sessionId: 'sess-1', expiresIn: 300, balance: 12.5 });
    const req = server.requests[0];
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/start/start-session');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.json).toStrictEqual({
      mode: 'default',
      profileId: 'prof-1',
      initialTask: { taskDetails: '', startingPoint: 'https://example.com', avoidDomains: ['x.com'], maxInputTokens: 1000, maxOutputTokens: 2000 },
    });
  });

  it('startSession with no options sends only mode and an empty initial task', async () => {
    server.reply({ body: { success: true, sessionId: 'sess-2' } });
    const started = await client().startSession({});
    expect(started.sessionId).toBe('sess-2');
    expect(started.balance).toBeUndefined();
    expect(server.requests[0].json).toStrictEqual({ mode: 'default', initialTask: { taskDetails: '' } });
  });

  it('startSession answered without a sessionId is an UnexpectedResponse', async () => {
    server.reply({ body: { success: true, message: 'ok' } });
    await expect(client().startSession({})).rejects.toBeInstanceOf(UnexpectedResponse);
    server.reply({ body: { success: true, sessionId: '' } });
    await expect(client().startSession({})).rejects.toBeInstanceOf(UnexpectedResponse);
  });

  it('sendTask: POST /start/send-message with actionType "newTask", newState "start" and the task fields', async () => {
    server.reply({ body: { success: true, sessionId: 's1', taskId: 't1', pending: true } });
    const task: WorkflowTask = { ...TASK, outputType: 'structured_json', outputSchema: { type: 'object' }, avoidDomains: ['x.com'] };
    await client().sendTask('s1', task);
    const req = server.requests[0];
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/start/send-message');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.json).toStrictEqual({
      sessionId: 's1',
      message: {
        actionType: 'newTask',
        newState: 'start',
        taskDetails: TASK.taskDetails,
        maxDuration: 180_000,
        outputType: 'structured_json',
        outputSchema: { type: 'object' },
        avoidDomains: ['x.com'],
      },
    });
  });

  it('getTask: GET /task/{sessionId}/{taskId}, ids URL-encoded, no body', async () => {
    server.reply({ body: { status: 'pending', taskId: 't 1' } });
    await client().getTask('s/1', 't 1');
    const req = server.requests[0];
    expect(req.method).toBe('GET');
    expect(req.path).toBe('/task/s%2F1/t%201');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.body).toBe('');
  });

  it('terminateSession: POST /start/send-message with actionType "state", newState "terminate"', async () => {
    server.reply({ body: { success: true, message: 'Session terminated' } });
    await expect(client().terminateSession('s1')).resolves.toEqual({ terminated: true });
    const req = server.requests[0];
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/start/send-message');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.json).toStrictEqual({ sessionId: 's1', message: { actionType: 'state', newState: 'terminate' } });
  });

  it('terminateSession on 404 SESSION_NOT_FOUND / SESSION_EXPIRED reports terminated:false instead of throwing', async () => {
    server.reply({ status: 404, body: { success: false, error: 'Session not found', code: 'SESSION_NOT_FOUND' } });
    await expect(client().terminateSession('gone')).resolves.toEqual({ terminated: false });
    server.reply({ status: 404, body: { success: false, error: 'Session expired', code: 'SESSION_EXPIRED' } });
    await expect(client().terminateSession('gone')).resolves.toEqual({ terminated: false });
    server.reply({ status: 404, raw: 'Not Found' });
    await expect(client().terminateSession('gone')).resolves.toEqual({ terminated: false });
  });

  it('terminateSession accepted with an empty 2xx body (e.g. 204) counts as terminated', async () => {
    server.reply({ status: 204, raw: '' });
    await expect(client().terminateSession('s1')).resolves.toEqual({ terminated: true });
    server.reply({ status: 200, raw: 'OK' });
    await expect(client().terminateSession('s1')).resolves.toEqual({ terminated: true });
  });

  it('terminateSession still throws on errors other than "session gone"', async () => {
    server.reply({ status: 401, body: { success: false, code: 'INVALID_API_KEY' } });
    await expect(client().terminateSession('s1')).rejects.toBeInstanceOf(Unauthorized);
    server.reply({ status: 500, body: { success: false, error: 'boom' } });
    await expect(client().terminateSession('s1')).rejects.toBeInstanceOf(ApiError);
  });
});

describe('task answers are normalized', () => {
  const cases: Array<{ name: string; answer: unknown; expected: unknown }> = [
    {
      name: 'top-level { type: "task_completed", data, usage } with prompt/completion tokens and cost',
      answer: { type: 'task_completed', data: { message: 'Found 3 keyboards', files: [] }, usage: { prompt_tokens: 120, completion_tokens: 30, cost: 0.0123 } },
      expected: { kind: 'completed', taskId: 'known-t', data: { message: 'Found 3 keyboards', files: [] }, usage: { inputTokens: 120, outputTokens: 30, cost: 0.0123 } },
    },
    {
      name: 'wrapped { success, sessionId, taskId, result: { type, data } } with inputTokens/outputTokens in data',
      answer: { success: true, sessionId: 's1', taskId: 't-wrapped', result: { type: 'task_completed', data: { message: 'ok', inputTokens: 5, outputTokens: 6 } } },
      expected: { kind: 'completed', taskId: 't-wrapped', data: { message: 'ok', inputTokens: 5, outputTokens: 6 }, usage: { inputTokens: 5, outputTokens: 6 } },
    },
    {
      name: 'status "complete" beside a wrapped result without a type',
      answer: { success: true, taskId: 't-c', status: 'complete', result: { data: { message: 'done' } }, usage: { inputTokens: 1, outputTokens: 2, cost: 0.5 } },
      expected: { kind: 'completed', taskId: 't-c', data: { message: 'done' }, usage: { inputTokens: 1, outputTokens: 2, cost: 0.5 } },
    },
    {
      name: 'status "complete" beside a typed wrapped result',
      answer: { success: true, status: 'complete', result: { type: 'task_completed', data: { message: 'done' } } },
      expected: { kind: 'completed', taskId: 'known-t', data: { message: 'done' } },
    },
    {
      name: 'prompt_tokens/completion_tokens inside data',
      answer: { type: 'task_completed', data: { message: 'x', prompt_tokens: 7, completion_tokens: 8 } },
      expected: { kind: 'completed', taskId: 'known-t', data: { message: 'x', prompt_tokens: 7, completion_tokens: 8 }, usage: { inputTokens: 7, outputTokens: 8 } },
    },
    {
      name: 'usage.cost alone',
      answer: { type: 'task_completed', data: { message: 'x' }, usage: { cost: 0.25 } },
      expected: { kind: 'completed', taskId: 'known-t', data: { message: 'x' }, usage: { cost: 0.25 } },
    },
    {
      name: 'pending: true',
      answer: { success: true, sessionId: 's1', taskId: 't-p', pending: true, pollUrl: '/task/s1/t-p' },
      expected: { kind: 'pending', taskId: 't-p' },
    },
    {
      name: 'status "pending" with a running usage',
      answer: { success: true, taskId: 't-p', status: 'pending', usage: { prompt_tokens: 900, completion_tokens: 40 } },
      expected: { kind: 'pending', taskId: 't-p', usage: { inputTokens: 900, outputTokens: 40 } },
    },
    {
      name: 'status "active" with a running usage in inputTokens/outputTokens',
      answer: { status: 'active', usage: { inputTokens: 10, outputTokens: 1, cost: 0.001 } },
      expected: { kind: 'pending', taskId: 'known-t', usage: { inputTokens: 10, outputTokens: 1, cost: 0.001 } },
    },
    {
      name: 'top-level guardrail { type: "guardrail_trigger", data: { type, value } }',
      answer: { type: 'guardrail_trigger', data: { type: 'human_input_needed', value: 'I need login credentials' } },
      expected: { kind: 'guardrail', taskId: 'known-t', question: 'I need login credentials', guardrailType: 'human_input_needed' },
    },
    {
      name: 'wrapped guardrail',
      answer: { success: true, taskId: 't-g', result: { type: 'guardrail_trigger', data: { type: 'human_input_needed', value: 'Confirm the purchase?' } } },
      expected: { kind: 'guardrail', taskId: 't-g', question: 'Confirm the purchase?', guardrailType: 'human_input_needed' },
    },
    {
      // A task state the docs name, said by status rather than type (it was refused as of no known shape).
      name: 'status "guardrail_trigger" with data { type, value }',
      answer: { success: true, taskId: 't-g', status: 'guardrail_trigger', data: { type: 'human_input_needed', value: 'Solve the CAPTCHA' } },
      expected: { kind: 'guardrail', taskId: 't-g', question: 'Solve the CAPTCHA', guardrailType: 'human_input_needed' },
    },
    {
      name: 'status "guardrail_trigger" beside a wrapped result without a type',
      answer: { success: true, taskId: 't-g', status: 'guardrail_trigger', result: { data: { type: 'human_input_needed', value: 'Confirm the purchase?' } } },
      expected: { kind: 'guardrail', taskId: 't-g', question: 'Confirm the purchase?', guardrailType: 'human_input_needed' },
    },
    {
      name: 'status "failed" with error',
      answer: { success: true, taskId: 't-f', status: 'failed', error: 'Navigation blocked by the site' },
      expected: { kind: 'failed', taskId: 't-f', reason: 'Navigation blocked by the site' },
    },
    {
      // Liberal in what it accepts: a plain-text answer is the result's message, not dropped.
      name: 'completed with plain-text data',
      answer: { type: 'task_completed', data: 'The cheapest kettle is 24.90 EUR' },
      expected: { kind: 'completed', taskId: 'known-t', data: { message: 'The cheapest kettle is 24.90 EUR' } },
    },
    {
      // Nor is a list, a number or a yes/no: kept as the result's output (it was dropped, the run succeeding with {}).
      name: 'completed with data that is a list',
      answer: { type: 'task_completed', data: [{ title: 'Kettle', price: 24.9 }, { title: 'Mug', price: 4 }] },
      expected: { kind: 'completed', taskId: 'known-t', data: { output: [{ title: 'Kettle', price: 24.9 }, { title: 'Mug', price: 4 }] } },
    },
    {
      name: 'completed (wrapped) with data that is a number',
      answer: { success: true, taskId: 't-n', result: { type: 'task_completed', data: 42 } },
      expected: { kind: 'completed', taskId: 't-n', data: { output: 42 } },
    },
    {
      // A cost written as a string still counts against the budget.
      name: 'pending with its cost as a string',
      answer: { pending: true, taskId: 't-p', usage: { cost: '0.5' } },
      expected: { kind: 'pending', taskId: 't-p', usage: { cost: 0.5 } },
    },
    {
      name: 'type "failed" (a task state the docs name)',
      answer: { type: 'failed', data: { message: 'Could not load the page' } },
      expected: { kind: 'failed', taskId: 'known-t', reason: 'Could not load the page' },
    },
  ];

  it.each(cases)('getTask: $name', async ({ answer, expected }) => {
    server.reply({ body: answer });
    const outcome = await client().getTask('s1', 'known-t');
    expect(outcome).toEqual(expected);
    // toEqual ignores undefined members; make sure no usage is invented when none was sent.
    if (!(expected as { usage?: unknown }).usage && 'usage' in outcome) expect(outcome.usage).toBeUndefined();
  });

  it('sendTask returns a task finished within the call (wrapped shape) as completed with its taskId', async () => {
    server.reply({ body: { success: true, sessionId: 's1', taskId: 't9', status: 'complete', result: { type: 'task_completed', data: { message: 'added to cart' } } } });
    await expect(client().sendTask('s1', TASK)).resolves.toEqual({ kind: 'completed', taskId: 't9', data: { message: 'added to cart' } });
  });

  it('sendTask answered "pending" without a taskId is an UnexpectedResponse (the task could not be polled)', async () => {
    server.reply({ body: { success: true, sessionId: 's1', pending: true } });
    const err = await caught(client().sendTask('s1', TASK));
    expect(err).toBeInstanceOf(UnexpectedResponse);
    expect(err.name).toBe('Webrun.UnexpectedResponse');
  });

  it('getTask answered "pending" without a taskId falls back to the polled taskId', async () => {
    server.reply({ body: { status: 'running' } });
    await expect(client().getTask('s1', 'tk')).resolves.toEqual({ kind: 'pending', taskId: 'tk' });
  });

  // A failed task answered HTTP 200 with success: false was an UnexpectedResponse (a poll retried it 6 times first).
  const failedTask = { success: false, sessionId: 's1', taskId: 't1', status: 'failed', error: 'Out of stock' };
  it.each(['sendTask', 'getTask'] as const)('%s: HTTP 200 { success: false } with the failed shape is the failed task, with its reason', async (call) => {
    server.reply({ body: failedTask });
    const c = client();
    await expect(call === 'sendTask' ? c.sendTask('s1', TASK) : c.getTask('s1', 't1')).resolves.toEqual({ kind: 'failed', taskId: 't1', reason: 'Out of stock' });
    expect(server.requests).toHaveLength(1);
  });

  it('a success: false task answer carrying a documented error code stays that API error', async () => {
    server.reply({ body: { ...failedTask, error: 'Session expired', code: 'SESSION_EXPIRED' } });
    expect((await caught(client().getTask('s1', 't1'))).name).toBe('Webrun.SessionExpired');
  });

  it('a success: false failed shape from a call that answers no task (a guardrail answer) stays an API error', async () => {
    server.reply({ body: failedTask });
    expect((await caught(client().answerGuardrail('s1', 't1', 'yes'))).name).toBe('Webrun.UnexpectedResponse');
  });

  it('an answer of no known shape is an UnexpectedResponse naming its keys', async () => {
    server.reply({ body: { success: true, hello: 'world' } });
    const err = await caught(client().getTask('s1', 't1'));
    expect(err).toBeInstanceOf(UnexpectedResponse);
    expect(err.message).toContain('hello');
  });

  it('readUsage prefers the first source and reads both namings', () => {
    expect(readUsage({ inputTokens: 1 }, { prompt_tokens: 9, completion_tokens: 2 })).toEqual({ inputTokens: 1, outputTokens: 2 });
    expect(readUsage({ inputTokens: 'x' }, undefined)).toBeUndefined();
  });
});

describe('HTTP and API errors', () => {
  const cases: Array<{ name: string; reply: ScriptedReply; cls: new (...a: any[]) => WebrunError; errorName: string; status: number; code?: string }> = [
    { name: '400', reply: { status: 400, body: { success: false, error: 'taskDetails is required', code: 'VALIDATION_ERROR' } }, cls: BadRequest, errorName: 'Webrun.BadRequest', status: 400, code: 'VALIDATION_ERROR' },
    { name: '401 INVALID_API_KEY', reply: { status: 401, body: { success: false, error: 'Invalid API key', code: 'INVALID_API_KEY' } }, cls: Unauthorized, errorName: 'Webrun.Unauthorized', status: 401, code: 'INVALID_API_KEY' },
    { name: '401 without a body', reply: { status: 401, raw: '' }, cls: Unauthorized, errorName: 'Webrun.Unauthorized', status: 401 },
    { name: '402 INSUFFICIENT_BALANCE', reply: { status: 402, body: { success: false, error: 'Insufficient balance', code: 'INSUFFICIENT_BALANCE' } }, cls: InsufficientBalance, errorName: 'Webrun.InsufficientBalance', status: 402, code: 'INSUFFICIENT_BALANCE' },
    { name: '402 without a code', reply: { status: 402, body: { success: false, error: 'Top up' } }, cls: InsufficientBalance, errorName: 'Webrun.InsufficientBalance', status: 402 },
    { name: '403 (account deactivated)', reply: { status: 403, body: { success: false, error: 'Account deactivated' } }, cls: Unauthorized, errorName: 'Webrun.Unauthorized', status: 403 },
    { name: '404 SESSION_NOT_FOUND', reply: { status: 404, body: { success: false, error: 'Session not found', code: 'SESSION_NOT_FOUND' } }, cls: SessionExpired, errorName: 'Webrun.SessionExpired', status: 404, code: 'SESSION_NOT_FOUND' },
    { name: '404 SESSION_EXPIRED', reply: { status: 404, body: { success: false, error: 'Session expired', code: 'SESSION_EXPIRED' } }, cls: SessionExpired, errorName: 'Webrun.SessionExpired', status: 404, code: 'SESSION_EXPIRED' },
    { name: '409 TASK_ALREADY_RUNNING', reply: { status: 409, body: { success: false, error: 'A task is already running', code: 'TASK_ALREADY_RUNNING' } }, cls: TaskFailed, errorName: 'Webrun.TaskFailed', status: 409, code: 'TASK_ALREADY_RUNNING' },
    { name: '500', reply: { status: 500, body: { success: false, error: 'Internal error' } }, cls: ApiError, errorName: 'Webrun.ApiError', status: 500 },
    { name: '503', reply: { status: 503, body: { success: false, error: 'No instance available' } }, cls: ServiceUnavailable, errorName: 'Webrun.ServiceUnavailable', status: 503 },
    { name: '500 with code INSTANCE_UNAVAILABLE', reply: { status: 500, body: { success: false, error: 'busy', code: 'INSTANCE_UNAVAILABLE' } }, cls: ServiceUnavailable, errorName: 'Webrun.ServiceUnavailable', status: 500, code: 'INSTANCE_UNAVAILABLE' },
    { name: '429 SESSION_LIMIT_REACHED (not a rate limit)', reply: { status: 429, body: { success: false, error: 'Session limit reached', code: 'SESSION_LIMIT_REACHED' } }, cls: SessionLimitReached, errorName: 'Webrun.SessionLimitReached', status: 429, code: 'SESSION_LIMIT_REACHED' },
    { name: 'HTTP 200 { success: false, code: SESSION_LIMIT_REACHED }', reply: { status: 200, body: { success: false, error: 'Too many sessions', code: 'SESSION_LIMIT_REACHED' } }, cls: SessionLimitReached, errorName: 'Webrun.SessionLimitReached', status: 200, code: 'SESSION_LIMIT_REACHED' },
    { name: 'HTTP 200 { success: false, code: INSUFFICIENT_BALANCE }', reply: { status: 200, body: { success: false, error: 'No balance', code: 'INSUFFICIENT_BALANCE' } }, cls: InsufficientBalance, errorName: 'Webrun.InsufficientBalance', status: 200, code: 'INSUFFICIENT_BALANCE' },
    { name: 'HTTP 200 { success: false, code: INVALID_API_KEY }', reply: { status: 200, body: { success: false, code: 'INVALID_API_KEY' } }, cls: Unauthorized, errorName: 'Webrun.Unauthorized', status: 200, code: 'INVALID_API_KEY' },
  ];

  it('a redirect is not followed: the 3xx is an UnexpectedResponse naming its status, and the key goes to no other address', async () => {
    const elsewhere = await startScriptedServer();
    try {
      server.reply({ status: 307, headers: { location: `${elsewhere.url}/start/start-session` }, raw: '' });
      const err = await caught(client().startSession({}));
      expect(err).toBeInstanceOf(UnexpectedResponse);
      expect(err.message).toContain('HTTP 307');
      expect(elsewhere.requests).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });

  it('a 404 from start-session (no session exists yet) is Webrun.ConfigError asking about the base URL, not SessionExpired', async () => {
    server.reply({ status: 404, body: { error: 'No route for POST /api/v1/start/start-session' } });
    const err = await caught(client().startSession({}));
    expect(err.name).toBe('Webrun.ConfigError');
    expect(err.message).toBe('start-session was refused with HTTP 404: No route for POST /api/v1/start/start-session (is the base URL the webrun API\'s?).');
    expect(server.requests).toHaveLength(1);
  });

  it.each(cases)('$name → $errorName, no inline retry', async ({ reply, cls, errorName, status, code }) => {
    server.reply(reply);
    const err = await caught(client().sendTask('s1', TASK));
    expect(err).toBeInstanceOf(cls);
    expect(err.name).toBe(errorName);
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    const apiText = (reply.body as { error?: string } | undefined)?.error;
    if (apiText) expect(err.message).toContain(apiText);
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expectNoKey(err);
  });

  it('400 after a session exists is Webrun.BadRequest (an API error, exit 1), never InvalidInput (bad execution input, exit 2)', async () => {
    server.reply({ status: 400, body: { success: false, error: 'bad outputSchema' } });
    const err = await caught(client().sendTask('s1', TASK));
    expect(err).toBeInstanceOf(BadRequest);
    expect(err).not.toBeInstanceOf(InvalidInput);
    expect(err.message).toBe('send-message was refused with HTTP 400: bad outputSchema.');
  });
});

describe('429 rate limiting', () => {
  const ok = { body: { success: true, sessionId: 's1', taskId: 't1', pending: true } };

  it('Retry-After in seconds within the inline limit: waits it out with the injected sleep and retries', async () => {
    server.reply({ status: 429, headers: { 'Retry-After': '2' }, body: { success: false, code: 'RATE_LIMIT_EXCEEDED' } }, ok);
    await expect(client().sendTask('s1', TASK)).resolves.toEqual({ kind: 'pending', taskId: 't1' });
    expect(sleeps).toEqual([2000]);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1].json).toEqual(server.requests[0].json);
  });

  it('Retry-After as an HTTP date a few seconds ahead is waited out too', async () => {
    const date = new Date(Date.now() + 3_000).toUTCString();
    server.reply({ status: 429, headers: { 'Retry-After': date } }, { body: { status: 'pending', taskId: 't1' } });
    await expect(client().getTask('s1', 't1')).resolves.toMatchObject({ kind: 'pending' });
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(1000);
    expect(sleeps[0]).toBeLessThanOrEqual(3000);
    expect(sleeps[0] % 1000).toBe(0);
  });

  it('Retry-After longer than maxInlineRetryAfterSeconds is thrown as RateLimited with retryAfterSeconds, without waiting', async () => {
    server.reply({ status: 429, headers: { 'Retry-After': '60' }, body: { success: false, error: 'Slow down', code: 'RATE_LIMIT_EXCEEDED' } });
    const err = (await caught(client().sendTask('s1', TASK))) as RateLimited;
    expect(err).toBeInstanceOf(RateLimited);
    expect(err.name).toBe('Webrun.RateLimited');
    expect(err.retryAfterSeconds).toBe(60);
    expect(err.status).toBe(429);
    expect(err.message).toContain('60');
    expect(sleeps).toEqual([]);
    expect(server.requests).toHaveLength(1);
    expectNoKey(err);
  });

  it('a long HTTP-date Retry-After is thrown with the seconds until that date', async () => {
    server.reply({ status: 429, headers: { 'Retry-After': new Date(Date.now() + 120_000).toUTCString() } });
    const err = (await caught(client().getTask('s1', 't1'))) as RateLimited;
    expect(err).toBeInstanceOf(RateLimited);
    expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(115);
    expect(err.retryAfterSeconds).toBeLessThanOrEqual(120);
    expect(sleeps).toEqual([]);
  });

  it('maxInlineRetryAfterSeconds is honoured exactly (equal waits, one more throws)', async () => {
    server.reply({ status: 429, headers: { 'Retry-After': '3' } }, ok);
    await client({ maxInlineRetryAfterSeconds: 3 }).sendTask('s1', TASK);
    expect(sleeps).toEqual([3000]);
    server.reply({ status: 429, headers: { 'Retry-After': '4' } });
    const err = (await caught(client({ maxInlineRetryAfterSeconds: 3 }).sendTask('s1', TASK))) as RateLimited;
    expect(err.retryAfterSeconds).toBe(4);
    expect(sleeps).toEqual([3000]);
  });

  it('gives up with RateLimited after maxInlineRetries waits', async () => {
    server.respond(() => ({ status: 429, headers: { 'Retry-After': '1' }, body: { success: false, code: 'RATE_LIMIT_EXCEEDED' } }));
    const err = (await caught(client({ maxInlineRetries: 2 }).sendTask('s1', TASK))) as RateLimited;
    expect(err).toBeInstanceOf(RateLimited);
    expect(err.retryAfterSeconds).toBe(1);
    expect(sleeps).toEqual([1000, 1000]);
    expect(server.requests).toHaveLength(3);
  });

  it('maxInlineRetries 0 never waits', async () => {
    server.reply({ status: 429, headers: { 'Retry-After': '1' } });
    await expect(client({ maxInlineRetries: 0 }).sendTask('s1', TASK)).rejects.toBeInstanceOf(RateLimited);
    expect(sleeps).toEqual([]);
    expect(server.requests).toHaveLength(1);
  });

  it('RATE_LIMIT_EXCEEDED in a 200 { success: false } body is a RateLimited too', async () => {
    server.reply({ status: 200, headers: { 'Retry-After': '30' }, body: { success: false, code: 'RATE_LIMIT_EXCEEDED' } });
    const err = (await caught(client().startSession({}))) as RateLimited;
    expect(err).toBeInstanceOf(RateLimited);
    expect(err.retryAfterSeconds).toBe(30);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('5', now)).toBe(5);
    expect(parseRetryAfter(' 12 ', now)).toBe(12);
    expect(parseRetryAfter('1.5', now)).toBe(1.5);
  });
  it('reads an HTTP date relative to now, never negative', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:07 GMT', now)).toBe(7);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
  });
  it('returns undefined for absent or unreadable values', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
  it('never returns a negative wait', () => {
    for (const v of ['-5', 'Thu, 01 Jan 1970 00:00:00 GMT', '0']) expect(parseRetryAfter(v, now) ?? 0).toBeGreaterThanOrEqual(0);
  });
});

describe('network failures and bad bodies', () => {
  it('connection refused → ServiceUnavailable (the request never reached the API)', async () => {
    const port = await closedPort();
    const err = await caught(client({ baseUrl: `http://127.0.0.1:${port}` }).sendTask('s1', TASK));
    expect(err).toBeInstanceOf(ServiceUnavailable);
    expect(err.name).toBe('Webrun.ServiceUnavailable');
    expect(err.code).toBe('ECONNREFUSED');
    expect(sleeps).toEqual([]);
    expectNoKey(err);
  });

  it('a server that never answers → ApiError after callTimeoutMs (getTask)', async () => {
    server.reply({ hang: true });
    const t0 = Date.now();
    const err = await caught(client({ callTimeoutMs: 150 }).getTask('s1', 't1'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toMatch(/no answer/);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expectNoKey(err);
  });

  it('a server that never answers → ApiError after longCallTimeoutMs (sendTask)', async () => {
    server.reply({ hang: true });
    const t0 = Date.now();
    const err = await caught(client({ longCallTimeoutMs: 150, callTimeoutMs: 10_000 }).sendTask('s1', TASK));
    expect(err).toBeInstanceOf(ApiError);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('answerGuardrail waits for a send-message the API holds past callTimeoutMs, within longCallTimeoutMs', async () => {
    // The API holds send-message while the agent works (~50 s); an answer it took was reported as never sent.
    server.reply({ delayMs: 600, body: { success: true, sessionId: 's1', taskId: 't1' } });
    await expect(client({ callTimeoutMs: 100, longCallTimeoutMs: 10_000 }).answerGuardrail('s1', 't1', 'yes')).resolves.toBeUndefined();
    expect(server.requests[0].json).toMatchObject({ sessionId: 's1', message: { actionType: 'guardrail', taskId: 't1', taskDetails: 'yes', newState: 'resume' } });
  });

  it('an answer that starts with a byte-order mark is read, as fetch read it', async () => {
    server.reply({ status: 200, raw: `\uFEFF${JSON.stringify({ success: true, sessionId: 'sess-bom' })}`, headers: { 'content-type': 'application/json' } });
    await expect(client().startSession({})).resolves.toMatchObject({ sessionId: 'sess-bom' });
  });

  const LARGE_ANSWER = { success: true, sessionId: 's1', taskId: 't1', status: 'completed', result: { data: 'x'.repeat(10_000) } };

  it('an answer cut off mid-body → ApiError on the network, never a truncated body read as the answer', async () => {
    server.reply({ midBody: 'cut', body: LARGE_ANSWER });
    const err = await caught(client().getTask('s1', 't1'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toBe('get-task failed on the network (ECONNRESET).');
  });

  it('an answer that stalls mid-body → ApiError after callTimeoutMs, saying no answer came in time', async () => {
    server.reply({ midBody: 'stall', body: LARGE_ANSWER });
    const t0 = Date.now();
    const err = await caught(client({ callTimeoutMs: 150 }).getTask('s1', 't1'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toBe('get-task got no answer within 0 s.');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('a connection cut after the request was sent → ApiError (ambiguous), not ServiceUnavailable', async () => {
    server.reply({ destroy: true });
    const err = await caught(client().sendTask('s1', TASK));
    expect(err).toBeInstanceOf(ApiError);
    expect(sleeps).toEqual([]);
  });

  const bodies: Array<{ name: string; raw: string }> = [
    { name: 'a non-JSON body', raw: '<html><body>Bad Gateway?</body></html>' },
    { name: 'an empty body', raw: '' },
    { name: 'a JSON array', raw: '[{"type":"task_completed"}]' },
    { name: 'JSON null', raw: 'null' },
    { name: 'a JSON string', raw: '"ok"' },
    { name: 'a JSON number', raw: '42' },
  ];
  for (const call of ['startSession', 'sendTask', 'getTask'] as const) {
    it.each(bodies)(`${call}: HTTP 200 with $name → UnexpectedResponse, never a TypeError`, async ({ raw }) => {
      server.reply({ status: 200, raw, headers: { 'content-type': 'application/json' } });
      const c = client();
      const p = call === 'startSession' ? c.startSession({}) : call === 'sendTask' ? c.sendTask('s1', TASK) : c.getTask('s1', 't1');
      const err = await caught(p);
      expect(err).toBeInstanceOf(UnexpectedResponse);
      expect(err.name).toBe('Webrun.UnexpectedResponse');
      expect(err.status).toBe(200);
    });
  }

  it('an error status with a non-JSON body still maps by status', async () => {
    server.reply({ status: 502, raw: '<html>Bad Gateway</html>' });
    await expect(client().getTask('s1', 't1')).rejects.toBeInstanceOf(ApiError);
    server.reply({ status: 503, raw: 'Service Unavailable' });
    await expect(client().getTask('s1', 't1')).rejects.toBeInstanceOf(ServiceUnavailable);
  });
});

describe('the API key never appears in an error', () => {
  const echo = `Invalid API key "${KEY}"`;
  const replies: Array<{ name: string; reply: ScriptedReply }> = [
    { name: '401 echoing the key in error', reply: { status: 401, body: { success: false, error: echo, code: 'INVALID_API_KEY' } } },
    { name: '400 echoing the key in error', reply: { status: 400, body: { success: false, error: echo } } },
    { name: '500 echoing the key in message', reply: { status: 500, body: { success: false, message: echo } } },
    { name: '429 echoing the key', reply: { status: 429, headers: { 'Retry-After': '999' }, body: { success: false, error: echo } } },
    { name: '200 success:false echoing the key in code', reply: { status: 200, body: { success: false, code: KEY } } },
    { name: 'a non-JSON body echoing the Authorization header', reply: { status: 200, raw: `Bearer ${KEY}` } },
    { name: 'a JSON array echoing the key', reply: { status: 200, raw: JSON.stringify([KEY]) } },
    { name: 'no known shape', reply: { status: 200, body: { weird: KEY } } },
  ];
  it.each(replies)('$name', async ({ reply }) => {
    server.reply(reply);
    const err = await caught(client().sendTask('s1', TASK));
    expect(err).toBeInstanceOf(WebrunError);
    expectNoKey(err);
  });

  it.each([
    ['a failed task reason', { success: true, taskId: 't1', status: 'failed', error: `Login with ${KEY} refused` }, 'failed'],
    ['a guardrail question', { type: 'guardrail_trigger', data: { type: 'human_input_needed', value: `Is ${KEY} your key?` } }, 'guardrail'],
    ['a completed result', { type: 'task_completed', data: { message: `The page showed ${KEY}` } }, 'completed'],
  ])('a 200 answer echoing it in %s is redacted before it becomes an outcome', async (_name, body, kind) => {
    server.reply({ status: 200, body });
    const outcome = await client().getTask('s1', 't1');
    expect(outcome.kind).toBe(kind);
    expect(JSON.stringify(outcome)).not.toContain(KEY);
    expect(JSON.stringify(outcome)).toContain('[redacted]');
  });

  it('an unknown 200 answer whose keys echo it names its keys redacted', async () => {
    server.reply({ status: 200, body: { [KEY]: 1, other: 2 } });
    const err = await caught(client().getTask('s1', 't1'));
    expect(err).toBeInstanceOf(UnexpectedResponse);
    expect(err.message).toContain('[redacted]');
    expectNoKey(err);
  });

  it('a refused connection and a timeout do not mention it either', async () => {
    server.reply({ hang: true });
    expectNoKey(await caught(client({ callTimeoutMs: 100 }).getTask('s1', 't1')));
    const port = await closedPort();
    expectNoKey(await caught(client({ baseUrl: `http://127.0.0.1:${port}` }).terminateSession('s1')));
  });
});

describe('site credentials', () => {
  const PASSWORD = 'hunter2-Tr0ub4dor&3-correct-horse';
  const USERNAME = 'ada@example.com';
  const SHOP_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun-sfn/shop-AbCdEf';
  const WITH_REFS: WorkflowTask = {
    ...TASK,
    secrets: [
      { match: '*.shop.example.com', secret: 'webrun-sfn/shop' },
      { match: 'bank.example.com', secret: SHOP_ARN },
    ],
  };
  const CREDENTIALS: SiteCredentials[] = [
    { match: '*.shop.example.com', fields: { username: USERNAME, password: PASSWORD } },
    { match: 'bank.example.com', fields: { login: 'ada', pin: '90210' } },
  ];
  const pending = { body: { success: true, sessionId: 's1', taskId: 't1', pending: true } };

  it('sendTask with credentials sends message.secrets = [{ match, fields }] and no secret reference anywhere', async () => {
    server.reply(pending);
    await client().sendTask('s1', WITH_REFS, CREDENTIALS);
    const req = server.requests[0];
    expect(req.json).toStrictEqual({
      sessionId: 's1',
      message: { actionType: 'newTask', newState: 'start', taskDetails: TASK.taskDetails, maxDuration: 180_000, secrets: CREDENTIALS },
    });
    // the references (names and ARNs) stay on our side
    expect(req.body).not.toContain('"secret"');
    expect(req.body).not.toContain('webrun-sfn/');
    expect(req.body).not.toContain(SHOP_ARN);
  });

  it('does not modify the task it was given', async () => {
    server.reply(pending);
    const task = JSON.parse(JSON.stringify(WITH_REFS)) as WorkflowTask;
    await client().sendTask('s1', task, CREDENTIALS);
    expect(task).toStrictEqual(WITH_REFS);
  });

  it('without credentials no secrets key is sent, even when the task has references', async () => {
    server.reply(pending, pending);
    await client().sendTask('s1', WITH_REFS);
    await client().sendTask('s1', WITH_REFS, []);
    for (const req of server.requests) {
      expect(req.json).toStrictEqual({ sessionId: 's1', message: { actionType: 'newTask', newState: 'start', taskDetails: TASK.taskDetails, maxDuration: 180_000 } });
      expect(req.body).not.toContain('secret');
    }
  });

  it('a 400 whose body echoes the password → an error with "[redacted]" and never the password', async () => {
    server.reply({ status: 400, body: { success: false, error: `Invalid secrets: field password "${PASSWORD}" for ${USERNAME} is too long`, code: 'VALIDATION_ERROR' } });
    const err = await caught(client().sendTask('s1', WITH_REFS, CREDENTIALS));
    expect(err).toBeInstanceOf(BadRequest);
    expect(err.message).toContain('[redacted]');
    expect(err.message).toContain('is too long');
    for (const text of [err.message, String(err.stack), JSON.stringify(err), String(err)]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(USERNAME);
    }
    expectNoKey(err);
  });

  it.each<{ name: string; reply: ScriptedReply }>([
    { name: '500 echoing the pin in message', reply: { status: 500, body: { success: false, message: 'cannot type 90210 into the field' } } },
    { name: '200 success:false echoing the password in code', reply: { status: 200, body: { success: false, code: PASSWORD } } },
    { name: 'a 429 echoing the password', reply: { status: 429, headers: { 'Retry-After': '999' }, body: { success: false, error: `slow down ${PASSWORD}` } } },
    { name: 'a non-JSON body echoing the password', reply: { status: 200, raw: `secrets=${PASSWORD}` } },
    { name: 'a body echoing a value that contains another one', reply: { status: 400, body: { success: false, error: `${PASSWORD}${PASSWORD}` } } },
  ])('$name → redacted', async ({ reply }) => {
    server.reply(reply);
    const err = await caught(client().sendTask('s1', WITH_REFS, CREDENTIALS));
    expect(err).toBeInstanceOf(WebrunError);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain('90210');
    expect(JSON.stringify(err)).not.toContain(PASSWORD);
  });

  it('a value that contains a shorter one is redacted whole (longest first)', async () => {
    const creds = [{ match: 'x.com', fields: { a: 'abc', b: 'abcdef-long-value' } }];
    server.reply({ status: 400, body: { success: false, error: 'got abcdef-long-value' } });
    const err = await caught(client().sendTask('s1', TASK, creds));
    expect(err.message).toContain('got [redacted]');
    expect(err.message).not.toContain('def-long-value');
  });

  it('credentials of one call are not redacted from (nor sent with) another call', async () => {
    server.reply(pending, { status: 400, body: { success: false, error: 'field is 90210' } });
    const c = client();
    await c.sendTask('s1', WITH_REFS, CREDENTIALS);
    const err = await caught(c.sendTask('s1', TASK));
    expect(err.message).toContain('90210');
    expect(server.requests[1].json.message.secrets).toBeUndefined();
  });

  it('a task answer in the same call is returned normally', async () => {
    server.reply({ body: { success: true, taskId: 't9', status: 'complete', result: { type: 'task_completed', data: { message: 'logged in' } } } });
    await expect(client().sendTask('s1', WITH_REFS, CREDENTIALS)).resolves.toEqual({ kind: 'completed', taskId: 't9', data: { message: 'logged in' } });
  });
});

// A 2FA seed kept in the login's secret (examples/site-secrets.local.json, README "Site credentials") is for the
// workflow to answer the code question with: the agent needs the login only, so the API never gets the seed.
describe('2FA seeds are not sent with the login', () => {
  const SEED = 'JBSWY3DPEHPK3PXP';
  const SHOP = 'webrun-sfn/example-shop';
  const LOGIN = { username: 'demo@example.com', password: 'demo-password-not-real' };
  const refs = [{ match: '*.shop.example.com', secret: SHOP }];
  const withRefs: WorkflowTask = { ...TASK, secrets: refs };
  const creds: SiteCredentials[] = [{ match: '*.shop.example.com', fields: { ...LOGIN, otp: SEED } }];
  const totpRule = (secret = SHOP, field = 'otp') => ({ rules: [{ when: '/verification code/i', answerFromSecret: { secret, field, totp: true } }] });
  const pending = { body: { success: true, sessionId: 's1', taskId: 't1', pending: true } };
  const sentSecrets = () => server.requests.map((r) => (r.json as { message: { secrets?: unknown } }).message.secrets);

  it('a session rule that answers the code from a field of the same secret: that field is left out', async () => {
    server.reply(pending);
    await client().sendTask('s1', withRefs, creds, undefined, { guardrails: totpRule(), tasks: [withRefs] });
    expect(sentSecrets()).toEqual([[{ match: '*.shop.example.com', fields: LOGIN }]]);
    expect(server.requests[0].body).not.toContain(SEED);
  });

  it('so is one named by the task\'s own rule, or by another task\'s, or by a rule naming the secret by ARN', async () => {
    server.reply(pending, pending, pending);
    const arn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SHOP}-AbCdEf`;
    await client().sendTask('s1', { ...TASK, secrets: refs, guardrails: totpRule() }, creds);
    await client().sendTask('s1', withRefs, creds, undefined, { tasks: [withRefs, { ...TASK, guardrails: totpRule() }] });
    await client().sendTask('s1', withRefs, creds, undefined, { guardrails: totpRule(arn), tasks: [] });
    expect(sentSecrets()).toEqual(Array(3).fill([{ match: '*.shop.example.com', fields: LOGIN }]));
  });

  it('a field of another secret, and a field a rule answers with as it is (no totp), are still sent', async () => {
    server.reply(pending);
    const run = { guardrails: { rules: [...totpRule('webrun-sfn/bank').rules, { when: 'pin', answerFromSecret: { secret: SHOP, field: 'password' } }] }, tasks: [] };
    await client().sendTask('s1', withRefs, creds, undefined, run);
    expect(sentSecrets()).toEqual([creds]);
  });

  it('a secret that holds nothing but the seed is not sent at all', async () => {
    server.reply(pending);
    await client().sendTask('s1', withRefs, [{ match: '*.shop.example.com', fields: { otp: SEED } }], undefined, { guardrails: totpRule(), tasks: [] });
    expect(sentSecrets()).toEqual([undefined]);
  });
});

// A 2xx task answer whose failure reason or guardrail question echoes a credential would otherwise reach the
// TaskFailed / GuardrailTriggered message, i.e. the execution's error cause.
describe('site credentials echoed in a task answer (not an HTTP error)', () => {
  const PASSWORD = 'hunter2-Tr0ub4dor&3-correct-horse';
  const creds: SiteCredentials[] = [{ match: '*.shop.example.com', fields: { username: 'ada@example.com', password: PASSWORD } }];

  it('a failed task whose reason echoes the password is redacted', async () => {
    server.reply({ body: { success: true, taskId: 't1', status: 'failed', error: `Login refused for password ${PASSWORD}` } });
    const outcome = await client().sendTask('s1', TASK, creds);
    expect(JSON.stringify(outcome)).not.toContain(PASSWORD);
  });

  it.each([
    ['a failure reason', { success: true, taskId: 't1', status: 'failed', error: '' }, 'reason'],
    ['a guardrail question', { success: true, taskId: 't1', type: 'guardrail_trigger', data: { type: 'human_input_needed', value: '' } }, 'question'],
  ] as const)('%s too long to keep, with the password where it is cut, keeps none of the password', async (_name, body, field) => {
    // The cut falls 12 characters into the password: cut first and redacted after, "hunter2-Tr0u" was kept.
    const text = `${'y'.repeat(1980)} typed ${PASSWORD} and more ${'z'.repeat(500)}`;
    expect(text.slice(0, 1_999)).toMatch(/ typed hunter2-Tr0u$/);
    const answer = field === 'reason' ? { ...body, error: text } : { ...body, data: { ...body.data, value: text } };
    server.reply({ body: answer });
    const outcome = (await client().sendTask('s1', TASK, creds)) as Record<string, unknown>;
    const kept = outcome[field] as string;
    expect(kept).toHaveLength(2_000); // MAX_API_TEXT_CHARS
    // Redacted first, so the cut falls after the password (and nothing else is hidden).
    expect(kept).toBe(`${'y'.repeat(1980)} typed [redacted] a…`);
    expect(kept).not.toContain('hunter');
  });

  it('a guardrail question that echoes the password is redacted', async () => {
    server.reply({ body: { success: true, taskId: 't1', type: 'guardrail_trigger', data: { type: 'human_input_needed', value: `Is ${PASSWORD} the right password?` } } });
    const outcome = await client().sendTask('s1', TASK, creds);
    expect(JSON.stringify(outcome)).not.toContain(PASSWORD);
  });
});

describe('deadline and cancellation', () => {
  it('a call starts only when enough of the invocation is left, and its timeout is cut to what is left', async () => {
    let now = 1_000_000;
    server.reply({ hang: true });
    const started = Date.now();
    const err = await caught(client({ callTimeoutMs: 10_000, deadlineAt: now + 300, now: () => now }).getTask('s1', 't1'));
    expect(err.name).toBe('Webrun.ApiError');
    expect(Date.now() - started).toBeLessThan(2_000);
    now += 10_000;
    const late = await caught(client({ deadlineAt: 1_000_000, now: () => now }).getTask('s1', 't1'));
    expect(late.message).toMatch(/was not called/);
  });

  it('a 429 whose wait would outlast the deadline is thrown at once (the state machine retries it), not waited out', async () => {
    server.reply({ status: 429, headers: { 'Retry-After': '8' }, body: { success: false, code: 'RATE_LIMIT_EXCEEDED' } });
    const err = await caught(client({ deadlineAt: Date.now() + 9_000 }).getTask('s1', 't1'));
    expect(err).toBeInstanceOf(RateLimited);
    expect(sleeps).toEqual([]);
  });

  it('a call that ended leaves neither its timeout nor a listener on the stop signal behind, answered or failed', async () => {
    // The calls' own timers (their 60 s timeouts), not the process's count of timers: the test server's and other
    // files' in this worker come and go on their own.
    const started = new Set<unknown>();
    const cleared = new Set<unknown>();
    const { setTimeout: realSet, clearTimeout: realClear } = globalThis;
    const setSpy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((...args: Parameters<typeof realSet>) => {
      const timer = realSet(...args);
      if (args[1] === 60_000) started.add(timer);
      return timer;
    }) as typeof setTimeout);
    const clearSpy = vi.spyOn(globalThis, 'clearTimeout').mockImplementation((timer) => {
      cleared.add(timer);
      realClear(timer);
    });
    const controller = new AbortController();
    try {
      const stoppable = client({ callTimeoutMs: 60_000, longCallTimeoutMs: 60_000, signal: controller.signal });
      server.reply({ body: { success: true, sessionId: 's-1' } });
      await stoppable.startSession({});
      server.reply({ status: 500, body: { success: false, error: 'down' } });
      await caught(stoppable.startSession({}));
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
    expect(started.size, 'one timeout per call').toBe(2);
    expect([...started].filter((timer) => !cleared.has(timer))).toEqual([]);
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
  });

  it('the stop signal cancels a call the API is holding', async () => {
    server.reply({ hang: true });
    const controller = new AbortController();
    const pending = caught(client({ longCallTimeoutMs: 60_000, signal: controller.signal }).sendTask('s1', TASK));
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const err = await pending;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err.message).toMatch(/cancelled/);
  });
});
