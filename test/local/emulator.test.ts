import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../local/emulator';

const KEY = 'test-key-7f3a9c';
const ROOT = path.resolve(__dirname, '../..');

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(opts: EmulatorOptions = {}): Promise<Emulator> {
  emu = await startEmulator({ apiKey: KEY, ...opts });
  return emu;
}

interface Res {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function call(method: string, p: string, body?: unknown, opts: { auth?: string | null; raw?: string } = {}): Promise<Res> {
  if (!emu) throw new Error('no emulator');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth = opts.auth === undefined ? `Bearer ${KEY}` : opts.auth;
  if (auth !== null) headers.authorization = auth;
  const res = await fetch(`${emu.url}${p}`, {
    method,
    headers,
    body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const startSession = (body: unknown = { mode: 'default' }): Promise<Res> => call('POST', '/start/start-session', body);
const newTask = (sessionId: string, taskDetails: string, extra: Record<string, unknown> = {}): Promise<Res> =>
  call('POST', '/start/send-message', { sessionId, message: { actionType: 'newTask', newState: 'start', taskDetails, ...extra } });
const terminate = (sessionId: string): Promise<Res> =>
  call('POST', '/start/send-message', { sessionId, message: { actionType: 'state', newState: 'terminate' } });
const poll = (sessionId: string, taskId: string): Promise<Res> => call('GET', `/task/${sessionId}/${taskId}`);

async function openSession(): Promise<string> {
  const r = await startSession();
  expect(r.status).toBe(200);
  return r.json.sessionId as string;
}

describe('session lifecycle (documented shapes)', () => {
  it('start → pending send → N pending polls → completed at top level → terminate → repeat terminate 404', async () => {
    await start({ pendingPolls: 3 });
    const s = await startSession({ mode: 'default', initialTask: { taskDetails: 'Go to example.com', startingPoint: 'https://example.com' } });
    expect(s.status).toBe(200);
    expect(s.json).toMatchObject({
      success: true,
      socketURL: expect.any(String),
      streaming: { webRTCURL: expect.any(String), webViewURL: expect.any(String), dimensions: { width: 1024, height: 600 } },
      initialPrompt: 'Go to example.com',
      expiresIn: 300000,
      balance: expect.any(Number),
      message: expect.any(String),
    });
    const sid = s.json.sessionId as string;
    expect(sid).toMatch(/^[0-9a-f]{12}$/);

    const sent = await newTask(sid, "Search for 'wireless keyboard'");
    expect(sent.status).toBe(200);
    expect(sent.json).toEqual({ success: true, sessionId: sid, taskId: expect.any(String), pending: true, pollUrl: `${emu!.url}/task/${sid}/${sent.json.taskId}` });
    const tid = sent.json.taskId as string;

    for (let i = 0; i < 3; i++) {
      const p = await poll(sid, tid);
      expect(p.status).toBe(200);
      expect(p.json).toEqual({ success: true, sessionId: sid, taskId: tid, pending: true });
    }
    const done = await poll(sid, tid);
    expect(done.status).toBe(200);
    expect(done.json.type).toBe('task_completed');
    expect(done.json.data.message).toContain('wireless keyboard');
    expect(done.json.usage).toEqual({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number), cost: expect.any(Number) });
    expect(done.json.success).toBeUndefined(); // the documented poll answer is the bare result
    expect((await poll(sid, tid)).json.type).toBe('task_completed'); // stays completed

    const t1 = await terminate(sid);
    expect(t1.status).toBe(200);
    expect(t1.json).toEqual({ success: true, sessionId: sid, message: 'Session terminated' });
    const t2 = await terminate(sid);
    expect(t2.status).toBe(404);
    expect(t2.json).toMatchObject({ success: false, code: 'SESSION_NOT_FOUND', error: expect.any(String) });
    expect((await newTask(sid, 'after terminate')).json.code).toBe('SESSION_NOT_FOUND');

    const l = emu!.ledger();
    expect(l).toMatchObject({ created: 1, terminated: 1, open: 0, expired: 0 });
    const rec = l.sessions[0];
    expect(rec).toMatchObject({ sessionId: sid, terminateCalls: 1, terminateRequests: 2, terminatedBy: 'request' });
    expect(rec.startBody).toMatchObject({ initialTask: { taskDetails: 'Go to example.com' } });
    expect(rec.tasks).toHaveLength(1);
    expect(rec.tasks[0]).toMatchObject({ taskId: tid, taskDetails: "Search for 'wireless keyboard'", outcome: 'completed', polls: 5, status: 'completed' });
    expect(rec.tasks[0].body).toMatchObject({ actionType: 'newTask' });
    expect(l.requests.map((r) => `${r.method} ${r.endpoint} ${r.status}`)).toEqual([
      'POST start 200',
      'POST send 200',
      ...Array(5).fill('GET poll 200'),
      'POST terminate 200',
      'POST terminate 404',
      'POST send 404',
    ]);
    expect(l.requests.every((r) => r.authorization === 'valid')).toBe(true);
    expect(JSON.stringify(l)).not.toContain(KEY);
  });

  it('unknown session and unknown task → 404 with codes', async () => {
    await start();
    expect((await newTask('nope', 'x')).json).toMatchObject({ success: false, code: 'SESSION_NOT_FOUND' });
    expect((await terminate('nope')).status).toBe(404);
    const sid = await openSession();
    const r = await poll(sid, 'missing');
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ success: false, code: 'TASK_NOT_FOUND' });
    expect((await poll('nope', 'missing')).json.code).toBe('SESSION_NOT_FOUND');
  });

  it('TASK_ALREADY_RUNNING while a task is pending, and no behaviour is consumed by the refusal', async () => {
    await start({ pendingPolls: 1 });
    emu!.enqueueTasks({ outcome: 'completed', pendingPolls: 1 }, { outcome: 'failed', pendingPolls: 0 });
    const sid = await openSession();
    const first = await newTask(sid, 'first');
    const second = await newTask(sid, 'second');
    expect(second.status).toBe(409);
    expect(second.json).toMatchObject({ success: false, code: 'TASK_ALREADY_RUNNING' });
    expect((await poll(sid, first.json.taskId)).json.pending).toBe(true);
    expect((await poll(sid, first.json.taskId)).json.type).toBe('task_completed');
    const third = await newTask(sid, 'third');
    expect(third.status).toBe(200);
    expect((await poll(sid, third.json.taskId)).json).toMatchObject({ status: 'failed' }); // got the 2nd behaviour
  });

  it('state stop marks the running task failed "stopped"; pause/resume answer success', async () => {
    await start();
    emu!.enqueueTasks({ outcome: 'stuck' });
    const sid = await openSession();
    const t = await newTask(sid, 'forever');
    for (const newState of ['pause', 'resume', 'stop']) {
      const r = await call('POST', '/start/send-message', { sessionId: sid, message: { actionType: 'state', newState } });
      expect(r.status).toBe(200);
      expect(r.json.success).toBe(true);
    }
    expect((await poll(sid, t.json.taskId)).json).toEqual({ success: true, sessionId: sid, taskId: t.json.taskId, status: 'failed', error: 'stopped' });
  });

  it('terminateOnCompletion ends the session when the task completes', async () => {
    await start({ pendingPolls: 0 });
    const sid = await openSession();
    const t = await newTask(sid, 'last one', { terminateOnCompletion: true });
    expect((await poll(sid, t.json.taskId)).json.type).toBe('task_completed');
    expect(emu!.ledger()).toMatchObject({ terminated: 1, open: 0 });
    expect(emu!.ledger().sessions[0]).toMatchObject({ terminatedBy: 'self', terminateCalls: 0 });
  });
});

describe('auth', () => {
  it('with apiKey: missing header or wrong key → 401 INVALID_API_KEY; the key is never recorded', async () => {
    await start();
    const none = await call('POST', '/start/start-session', { mode: 'default' }, { auth: null });
    expect(none.status).toBe(401);
    expect(none.json).toEqual({ success: false, error: 'Invalid API key', code: 'INVALID_API_KEY' });
    const wrong = await call('POST', '/start/start-session', { mode: 'default' }, { auth: 'Bearer not-the-key' });
    expect(wrong.status).toBe(401);
    expect((await call('GET', '/task/a/b', undefined, { auth: `Basic ${KEY}` })).status).toBe(401);
    expect((await startSession()).status).toBe(200);
    const l = emu!.ledger();
    expect(l.created).toBe(1);
    expect(l.requests.map((r) => r.authorization)).toEqual(['missing', 'invalid', 'invalid', 'valid']);
    expect(JSON.stringify(l)).not.toContain(KEY);
  });

  it('without apiKey: any non-empty Bearer token is accepted', async () => {
    emu = await startEmulator();
    expect((await call('POST', '/start/start-session', {}, { auth: 'Bearer anything' })).status).toBe(200);
    expect((await call('POST', '/start/start-session', {}, { auth: 'Bearer ' })).status).toBe(401);
    expect((await call('POST', '/start/start-session', {}, { auth: null })).status).toBe(401);
  });
});

describe('task outcomes', () => {
  it('inline completion comes back in the send-message answer (wrapped result)', async () => {
    await start();
    emu!.enqueueTasks({ outcome: 'completed', inline: true, data: { message: 'Added item to cart', files: [] } });
    const sid = await openSession();
    const r = await newTask(sid, 'Now add the first item to cart');
    expect(r.json).toEqual({ success: true, sessionId: sid, taskId: expect.any(String), result: { type: 'task_completed', data: { message: 'Added item to cart', files: [] } } });
    expect(r.json.pending).toBeUndefined();
    expect(emu!.ledger().sessions[0].tasks[0]).toMatchObject({ status: 'completed', polls: 0 });
  });

  it('sendHoldMs: a task finishing within the hold is answered inline; a stuck one pending after the hold', async () => {
    await start({ sendHoldMs: 150 });
    emu!.enqueueTasks({ outcome: 'completed', pendingMs: 30 }, { outcome: 'stuck' });
    const sid = await openSession();
    const a = await newTask(sid, 'quick');
    expect(a.json.result.type).toBe('task_completed');
    const t0 = Date.now();
    const b = await newTask(sid, 'slow');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(b.json.pending).toBe(true);
  });

  it('pendingMs keeps a task pending until that time has passed', async () => {
    await start();
    emu!.enqueueTasks({ outcome: 'completed', pendingMs: 120 });
    const sid = await openSession();
    const t = await newTask(sid, 'timed');
    expect((await poll(sid, t.json.taskId)).json.pending).toBe(true);
    await new Promise((r) => setTimeout(r, 140));
    expect((await poll(sid, t.json.taskId)).json.type).toBe('task_completed');
  });

  it('guardrail: top-level at the poll URL, wrapped inline; answering resume completes, stop fails', async () => {
    await start({ pendingPolls: 0 });
    emu!.enqueueTasks(
      { outcome: 'guardrail' },
      { outcome: 'guardrail', inline: true, question: 'Confirm the purchase?' },
      { outcome: 'guardrail', inline: true },
    );
    const sid = await openSession();
    const t = await newTask(sid, 'Log in');
    const g = await poll(sid, t.json.taskId);
    expect(g.json).toEqual({ type: 'guardrail_trigger', data: { type: 'human_input_needed', value: 'I need login credentials' } });
    const resume = await call('POST', '/start/send-message', { sessionId: sid, message: { actionType: 'guardrail', taskDetails: 'user / pass', newState: 'resume' } });
    expect(resume.json).toMatchObject({ success: true, taskId: t.json.taskId, pending: true });
    expect((await poll(sid, t.json.taskId)).json.type).toBe('task_completed');

    const inline = await newTask(sid, 'Buy it');
    expect(inline.json).toEqual({
      success: true,
      sessionId: sid,
      taskId: expect.any(String),
      result: { type: 'guardrail_trigger', data: { type: 'human_input_needed', value: 'Confirm the purchase?' } },
    });
    await call('POST', '/start/send-message', { sessionId: sid, message: { actionType: 'guardrail', taskDetails: 'no', newState: 'stop' } });
    expect((await poll(sid, inline.json.taskId)).json).toMatchObject({ status: 'failed', error: 'stopped' });
  });

  it('failed: status "failed" with the reason, at the poll URL and inline', async () => {
    await start({ pendingPolls: 1 });
    emu!.enqueueTasks({ outcome: 'failed' }, { outcome: 'failed', inline: true, reason: 'Element not found' });
    const sid = await openSession();
    const t = await newTask(sid, 'Click the thing');
    expect((await poll(sid, t.json.taskId)).json.pending).toBe(true);
    expect((await poll(sid, t.json.taskId)).json).toEqual({ success: true, sessionId: sid, taskId: t.json.taskId, status: 'failed', error: 'Navigation failed: page did not load' });
    const i = await newTask(sid, 'Click the other thing');
    expect(i.json).toEqual({ success: true, sessionId: sid, taskId: expect.any(String), status: 'failed', error: 'Element not found' });
  });

  it("'status' shape: status pending/active with running usage, then status complete with a wrapped result", async () => {
    await start({ shape: 'status', pendingPolls: 2 });
    const sid = await openSession();
    const t = await newTask(sid, 'Find the price');
    expect(t.json).toEqual({ success: true, sessionId: sid, taskId: expect.any(String), status: 'pending', pollUrl: expect.stringContaining(`/task/${sid}/`) });
    expect(t.json.pending).toBeUndefined();
    const p1 = await poll(sid, t.json.taskId);
    const p2 = await poll(sid, t.json.taskId);
    expect([p1.json.status, p2.json.status]).toEqual(['active', 'pending']);
    expect(p1.json.pending).toBeUndefined();
    expect(p2.json.usage).toEqual({ inputTokens: expect.any(Number), outputTokens: expect.any(Number) });
    const done = await poll(sid, t.json.taskId);
    expect(done.json).toEqual({
      success: true,
      sessionId: sid,
      taskId: t.json.taskId,
      status: 'complete',
      result: { type: 'task_completed', data: { message: expect.stringContaining('Find the price'), inputTokens: expect.any(Number), outputTokens: expect.any(Number) } },
      usage: { inputTokens: expect.any(Number), outputTokens: expect.any(Number), cost: expect.any(Number) },
    });
    expect(done.json.type).toBeUndefined();
  });

  it('per-task shape overrides the default; status-shape guardrail is wrapped in result', async () => {
    await start({ pendingPolls: 0 });
    emu!.enqueueTasks({ outcome: 'guardrail', shape: 'status' });
    const sid = await openSession();
    const t = await newTask(sid, 'x');
    expect(t.json.status).toBe('pending');
    const g = await poll(sid, t.json.taskId);
    expect(g.json).toMatchObject({ success: true, result: { type: 'guardrail_trigger', data: { type: 'human_input_needed' } } });
    expect(g.json.type).toBeUndefined();
  });

  it('structured_json: message is JSON equal to data.output, generated from the schema', async () => {
    await start({ pendingPolls: 0 });
    const sid = await openSession();
    const outputSchema = {
      type: 'object',
      properties: {
        title: { type: 'string' },
        price: { type: 'number' },
        rating: { type: 'integer', minimum: 1, maximum: 5 },
        inStock: { type: 'boolean' },
        url: { type: 'string', format: 'uri' },
        tags: { type: 'array', items: { type: 'string' } },
        seller: { type: 'object', properties: { name: { type: 'string' } } },
        condition: { enum: ['new', 'used'] },
      },
      required: ['title', 'price'],
    };
    const t = await newTask(sid, 'Get the product', { outputType: 'structured_json', outputSchema });
    const data = (await poll(sid, t.json.taskId)).json.data;
    const parsed = JSON.parse(data.message);
    expect(parsed).toEqual(data.output);
    expect(Object.keys(parsed).sort()).toEqual(Object.keys(outputSchema.properties).sort());
    expect(parsed).toMatchObject({ title: expect.any(String), price: expect.any(Number), inStock: expect.any(Boolean), condition: 'new', seller: { name: expect.any(String) } });
    expect(Number.isInteger(parsed.rating) && parsed.rating >= 1 && parsed.rating <= 5).toBe(true);
    expect(parsed.tags).toHaveLength(1);
    expect(() => new URL(parsed.url)).not.toThrow();

    const bare = await newTask(sid, 'Anything', { outputType: 'structured_json', outputSchema: { type: 'object' } });
    const bareData = (await poll(sid, bare.json.taskId)).json.data;
    expect(JSON.parse(bareData.message)).toEqual({ result: expect.stringContaining('Anything') });

    const csv = await newTask(sid, 'Table', { outputType: 'structured_csv', outputSchema: { type: 'object', properties: { name: { type: 'string' }, qty: { type: 'integer' } } } });
    const lines = ((await poll(sid, csv.json.taskId)).json.data.message as string).trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('name,qty');
  });

  it('run-task: completed inline, recorded as a session created and terminated by itself', async () => {
    await start();
    const r = await call('POST', '/start/run-task', { taskDetails: 'Search Google for Anthropic and return the first result' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ success: true, sessionId: expect.any(String), taskId: expect.any(String), result: { type: 'task_completed', data: { message: expect.stringContaining('Anthropic') } } });
    const l = emu!.ledger();
    expect(l).toMatchObject({ created: 1, terminated: 1, open: 0 });
    expect(l.sessions[0]).toMatchObject({ sessionId: r.json.sessionId, terminatedBy: 'self', terminateCalls: 0, tasks: [{ status: 'completed' }] });
    expect((await call('POST', '/start/run-task', { taskDetails: '' })).json.code).toBe('INVALID_REQUEST');
    expect(emu!.ledger().created).toBe(1);
  });
});

describe('faults', () => {
  it('429 with Retry-After and RATE_LIMIT_EXCEEDED, once by default; the faulted request did nothing', async () => {
    await start();
    emu!.injectFault({ endpoint: 'start', status: 429, retryAfterSeconds: 7 });
    const r = await startSession();
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('7');
    expect(r.json).toMatchObject({ success: false, code: 'RATE_LIMIT_EXCEEDED', error: expect.any(String) });
    expect((await startSession()).status).toBe(200);
    const l = emu!.ledger();
    expect(l.created).toBe(1);
    expect(l.requests.map((x) => [x.status, x.fault ?? false])).toEqual([[429, true], [200, false]]);
  });

  it('503 INSTANCE_UNAVAILABLE on send does not consume the queued behaviour', async () => {
    await start({ pendingPolls: 0 });
    emu!.enqueueTasks({ outcome: 'failed', inline: true });
    emu!.injectFault({ endpoint: 'send', status: 503, code: 'INSTANCE_UNAVAILABLE' });
    const sid = await openSession();
    const r = await newTask(sid, 'x');
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ success: false, code: 'INSTANCE_UNAVAILABLE' });
    expect((await newTask(sid, 'x')).json.status).toBe('failed');
    expect(emu!.ledger().sessions[0].tasks).toHaveLength(1);
  });

  it('skip/times target "the 2nd and 3rd poll"; code alone implies the status', async () => {
    await start({ pendingPolls: 5 });
    emu!.injectFault({ endpoint: 'poll', code: 'INSTANCE_UNAVAILABLE', skip: 1, times: 2 });
    const sid = await openSession();
    const t = await newTask(sid, 'x');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await poll(sid, t.json.taskId)).status);
    expect(statuses).toEqual([200, 503, 503, 200, 200]);
    expect(emu!.ledger().sessions[0].tasks[0].polls).toBe(3); // faulted polls never reached the task
  });

  it('rules are applied in order: 429 then 500 on consecutive requests; Infinity applies forever', async () => {
    await start();
    emu!.injectFault({ endpoint: 'any', status: 429 });
    emu!.injectFault({ endpoint: 'start', status: 500 });
    expect((await startSession()).status).toBe(429);
    expect((await startSession()).status).toBe(500);
    expect((await startSession()).status).toBe(200);
    emu!.injectFault({ endpoint: 'run-task', status: 402, times: Infinity });
    for (let i = 0; i < 3; i++) expect((await call('POST', '/start/run-task', { taskDetails: 'x' })).json.code).toBe('INSUFFICIENT_BALANCE');
  });

  it('latency alone delays then answers normally', async () => {
    await start();
    emu!.injectFault({ endpoint: 'start', latencyMs: 150 });
    const t0 = Date.now();
    const r = await startSession();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(r.status).toBe(200);
    expect(r.json.sessionId).toEqual(expect.any(String));
  });

  it('hangup destroys the socket without an answer', async () => {
    await start();
    emu!.injectFault({ endpoint: 'start', hangup: true });
    await expect(startSession()).rejects.toThrow();
    expect(emu!.ledger()).toMatchObject({ created: 0, requests: [{ status: 0, fault: true }] });
    expect((await startSession()).status).toBe(200);
  });

  it('raw non-JSON body with the given status', async () => {
    await start();
    emu!.injectFault({ endpoint: 'poll', rawBody: '<html>oops</html>', status: 502 });
    const r = await poll('a', 'b');
    expect(r.status).toBe(502);
    expect(r.text).toBe('<html>oops</html>');
    expect(r.json).toBeUndefined();
    expect(r.headers.get('content-type')).toContain('text/html');
  });

  it('a fault on terminate leaves the session open; the retry terminates it exactly once', async () => {
    await start();
    emu!.injectFault({ endpoint: 'terminate', status: 500 });
    const sid = await openSession();
    expect((await newTask(sid, 'not affected')).status).toBe(200); // 'send' excludes terminate, and vice versa
    expect((await terminate(sid)).status).toBe(500);
    expect(emu!.ledger()).toMatchObject({ open: 1, terminated: 0 });
    expect((await terminate(sid)).status).toBe(200);
    expect(emu!.ledger().sessions[0]).toMatchObject({ terminateCalls: 1, terminateRequests: 1 });
  });
});

describe('session expiry', () => {
  it('an idle session expires (found by the sweep, then SESSION_EXPIRED on use); activity keeps one alive', async () => {
    await start({ sessionIdleMs: 80 });
    const idle = await openSession();
    const busy = await openSession();
    const t = await newTask(busy, 'keep alive');
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 25));
      expect((await poll(busy, t.json.taskId)).status).toBe(200);
    }
    const l = emu!.ledger();
    expect(l).toMatchObject({ created: 2, expired: 1, open: 1, terminated: 0 });
    const idleRec = l.sessions.find((s) => s.sessionId === idle)!;
    expect(idleRec.expiredAt).toBeGreaterThanOrEqual(idleRec.createdAt + 80);
    const r = await newTask(idle, 'too late');
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('SESSION_EXPIRED');
    expect((await terminate(idle)).json.code).toBe('SESSION_EXPIRED');
    expect(emu!.ledger().sessions.find((s) => s.sessionId === idle)).toMatchObject({ terminateCalls: 0, terminateRequests: 1 });
    expect((await terminate(busy)).status).toBe(200);
  });
});

describe('validation and routing', () => {
  it('bad JSON and invalid fields → 400 INVALID_REQUEST; unknown route → 404 JSON; wrong method → 405', async () => {
    await start();
    const bad = await call('POST', '/start/start-session', undefined, { raw: '{"mode": ' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ success: false, code: 'INVALID_REQUEST', error: expect.stringMatching(/valid JSON/) });
    const badSend = await call('POST', '/start/send-message', undefined, { raw: 'sessionId=1' });
    expect(badSend.status).toBe(400);
    expect(badSend.json.error).toMatch(/valid JSON/);
    for (const body of [[1], 'x', { mode: 'turbo' }, { initialTask: { maxDuration: 0 } }, { initialTask: { maxDuration: 300001 } }]) {
      expect((await startSession(body)).json.code, JSON.stringify(body)).toBe('INVALID_REQUEST');
    }
    expect((await startSession({ initialTask: { maxDuration: 300000, taskDetails: '' } })).status).toBe(200);
    const sid = emu!.ledger().sessions[0].sessionId;
    const msg = (message: unknown): Promise<Res> => call('POST', '/start/send-message', { sessionId: sid, message });
    for (const m of [
      { actionType: 'newTask', newState: 'start' },
      { actionType: 'newTask', newState: 'start', taskDetails: '  ' },
      { actionType: 'newTask', taskDetails: 'x' },
      { actionType: 'newTask', newState: 'start', taskDetails: 'x', maxDuration: 300001 },
      { actionType: 'newTask', newState: 'start', taskDetails: 'x', outputType: 'xml' },
      { actionType: 'newTask', newState: 'start', taskDetails: 'x', secrets: [{ match: '*.example.com', secret: 'webrun-sfn/x' }] },
      { actionType: 'newTask', newState: 'start', taskDetails: 'x', secrets: [{ match: '', fields: { user: 'a' } }] },
      { actionType: 'newTask', newState: 'start', taskDetails: 'x', secrets: { match: '*.example.com', fields: { user: 'a' } } },
      { actionType: 'dance' },
      { actionType: 'state', newState: 'explode' },
      'hello',
    ]) {
      const r = await msg(m);
      expect(r.status, JSON.stringify(m)).toBe(400);
      expect(r.json.code).toBe('INVALID_REQUEST');
    }
    expect((await call('POST', '/start/send-message', { message: { actionType: 'state', newState: 'pause' } })).status).toBe(400);
    expect(emu!.ledger().sessions[0].tasks).toHaveLength(0);

    const nf = await call('GET', '/nope');
    expect(nf.status).toBe(404);
    expect(nf.json).toMatchObject({ success: false, code: 'NOT_FOUND' });
    expect(nf.headers.get('content-type')).toContain('application/json');
    const wm = await call('GET', '/start/start-session');
    expect(wm.status).toBe(405);
    expect(wm.json.success).toBe(false);
  });

  it('control endpoints: health, queue tasks, inject faults, ledger, reset', async () => {
    await start();
    const health = await call('GET', '/', undefined, { auth: null });
    expect(health.json).toEqual({ ok: true, name: 'webrun-emulator' });
    const noAuth = { auth: null };
    expect((await call('POST', '/__emulator/tasks', [{ outcome: 'failed', pendingPolls: 0, reason: 'scripted' }], noAuth)).status).toBe(200);
    expect((await call('POST', '/__emulator/faults', [{ endpoint: 'poll', status: 500, times: null }], noAuth)).status).toBe(200);
    expect((await call('POST', '/__emulator/tasks', [{ outcome: 'maybe' }], noAuth)).status).toBe(400);
    expect((await call('POST', '/__emulator/faults', [{ endpoint: 'everywhere' }], noAuth)).status).toBe(400);
    expect((await call('POST', '/__emulator/faults', undefined, { auth: null, raw: 'nope' })).status).toBe(400);

    const sid = await openSession();
    const t = await newTask(sid, 'x');
    for (let i = 0; i < 2; i++) expect((await poll(sid, t.json.taskId)).status).toBe(500); // times: null = Infinity
    const l = await call('GET', '/__emulator/ledger', undefined, noAuth);
    expect(l.json).toMatchObject({ created: 1, open: 1, sessions: [{ sessionId: sid, tasks: [{ outcome: 'failed' }] }] });
    expect(l.json.requests).toHaveLength(4); // control requests are not recorded

    expect((await call('POST', '/__emulator/reset', undefined, noAuth)).status).toBe(200);
    expect(emu!.ledger()).toEqual({ sessions: [], created: 0, terminated: 0, open: 0, expired: 0, requests: [] });
    const sid2 = await openSession();
    const t2 = await newTask(sid2, 'y');
    expect((await poll(sid2, t2.json.taskId)).status).toBe(200); // faults cleared
  });

  it('enqueueTasks and injectFault reject invalid input; close() stops listening', async () => {
    const e = await start();
    expect(() => e.enqueueTasks({ outcome: 'nope' as never })).toThrow(/outcome/);
    expect(() => e.injectFault({ endpoint: 'nowhere' as never })).toThrow(/endpoint/);
    const url = e.url;
    await e.close();
    emu = undefined;
    await expect(fetch(`${url}/`)).rejects.toThrow();
  });

  it('the request log never contains the key or bodies', async () => {
    const lines: string[] = [];
    await start({ log: (l) => lines.push(l) });
    await startSession({ mode: 'default', initialTask: { taskDetails: 'secret-task-text' } });
    await call('GET', '/nope');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^POST \/start\/start-session 200 \d+ms$/);
    expect(lines.join('\n')).not.toContain(KEY);
    expect(lines.join('\n')).not.toContain('secret-task-text');
  });
});

describe('CLI (bin/emulator.ts)', () => {
  function run(args: string[]): { child: ReturnType<typeof spawn>; stderr: () => string; exit: Promise<number | null> } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/emulator.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, stderr: () => err, exit };
  }

  it('a bad flag exits 2 naming the flag', async () => {
    const a = run(['--prot', '80']);
    const b = run(['--pending-polls', 'many']);
    expect(await a.exit).toBe(2);
    expect(a.stderr()).toContain('--prot');
    expect(await b.exit).toBe(2);
    expect(b.stderr()).toContain('--pending-polls');
  });

  it('serves on 127.0.0.1, prints the URL on stderr, honours --pending-polls and stops on SIGTERM', async () => {
    const p = run(['--port', '0', '--pending-polls', '0', '--api-key', KEY]);
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${p.stderr()}`)), 10_000);
      p.child.stderr!.on('data', () => {
        const m = /http:\/\/127\.0\.0\.1:\d+/.exec(p.stderr());
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      });
    });
    try {
      const h = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
      const s: any = await (await fetch(`${url}/start/start-session`, { method: 'POST', headers: h, body: '{"mode":"default"}' })).json();
      const message = { actionType: 'newTask', newState: 'start', taskDetails: 'cli task' };
      const t: any = await (await fetch(`${url}/start/send-message`, { method: 'POST', headers: h, body: JSON.stringify({ sessionId: s.sessionId, message }) })).json();
      const r: any = await (await fetch(`${url}/task/${s.sessionId}/${t.taskId}`, { headers: h })).json();
      expect(r.type).toBe('task_completed');
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exit).toBe(0);
    expect(p.stderr()).not.toContain(KEY);
  });
});
