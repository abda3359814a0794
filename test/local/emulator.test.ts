/**
 * The emulator's public contract at the HTTP level: documented shapes, auth, outcomes, faults, expiry, validation,
 * control endpoints. Newer behaviours have their own files under test/local/emulator/.
 */
import { describe, expect, it, vi } from 'vitest';
import { startEmulator } from '../../local/emulator';
import { Timers } from '../../local/emulator/util';
import { startReceiver } from '../../local/doorbell';
import { Client, emulatorPerTest, KEY, obj, sleep, str } from './emulator/harness';

const emulator = emulatorPerTest();

describe.concurrent('the emulator (tests run concurrently, each with its own emulator)', () => {
  describe('session lifecycle (documented shapes)', () => {
    it('start → pending send → N pending polls → completed at top level → terminate → repeat terminate 404', async () => {
      const c = await emulator.start({ pendingPolls: 3 });
      const s = await c.startSession({ mode: 'default', initialTask: { taskDetails: 'Go to example.com', startingPoint: 'https://example.com' } });
      expect(s.status).toBe(200);
      expect(s.json).toMatchObject({
        success: true,
        socketURL: expect.any(String),
        streaming: { webRTCURL: expect.any(String), webViewURL: expect.any(String), dimensions: { width: 1024, height: 600 } },
        initialPrompt: 'Go to example.com',
        expiresIn: 300000,
        balance: 12.5,
        message: expect.any(String),
      });
      const sid = str(s.json.sessionId);
      expect(sid).toMatch(/^[0-9a-f]{12}$/);

      const sent = await c.newTask(sid, "Search for 'wireless keyboard'");
      expect(sent.status).toBe(200);
      const tid = str(sent.json.taskId);
      const runningUsage = { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number), cost: expect.any(Number) };
      expect(sent.json).toEqual({ success: true, sessionId: sid, taskId: tid, pending: true, pollUrl: `${c.emu.url}/task/${sid}/${tid}`, usage: runningUsage });

      for (let i = 0; i < 3; i++) {
        const p = await c.poll(sid, tid);
        expect(p.status).toBe(200);
        expect(p.json).toEqual({ success: true, sessionId: sid, taskId: tid, pending: true, usage: runningUsage });
      }
      const done = await c.poll(sid, tid);
      expect(done.status).toBe(200);
      expect(done.json.type).toBe('task_completed');
      expect(str(obj(done.json.data).message)).toContain('wireless keyboard');
      expect(done.json.usage).toEqual({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number), cost: expect.any(Number) });
      expect(done.json.success).toBeUndefined(); // the documented poll answer is the bare result
      expect((await c.poll(sid, tid)).json.type).toBe('task_completed'); // stays completed

      const t1 = await c.terminate(sid);
      expect(t1.status).toBe(200);
      expect(t1.json).toEqual({ success: true, sessionId: sid, message: 'Session terminated' });
      const t2 = await c.terminate(sid);
      expect(t2.status).toBe(404);
      expect(t2.json).toMatchObject({ success: false, code: 'SESSION_NOT_FOUND', error: expect.any(String) });
      expect((await c.newTask(sid, 'after terminate')).json.code).toBe('SESSION_NOT_FOUND');

      const l = c.emu.ledger();
      expect(l).toMatchObject({ created: 1, terminated: 1, open: 0, expired: 0, maxOpen: 1 });
      const rec = l.sessions[0];
      expect(rec).toMatchObject({ sessionId: sid, terminateCalls: 1, terminateRequests: 2, terminatedBy: 'request' });
      expect(rec.startBody).toMatchObject({ initialTask: { taskDetails: 'Go to example.com' } });
      expect(rec.tasks).toHaveLength(1);
      expect(rec.tasks[0]).toMatchObject({ taskId: tid, taskDetails: "Search for 'wireless keyboard'", outcome: 'completed', polls: 5, status: 'completed', answers: [] });
      expect(rec.tasks[0].body).toMatchObject({ actionType: 'newTask' });
      expect(l.requests.map((r) => `${r.method} ${r.endpoint} ${r.status}`)).toEqual([
        'POST start 200',
        'POST send 200',
        ...Array<string>(5).fill('GET poll 200'),
        'POST terminate 200',
        'POST terminate 404',
        'POST send 404',
      ]);
      expect(l.requests.every((r) => r.authorization === 'valid')).toBe(true);
      expect(JSON.stringify(l)).not.toContain(KEY);
    });

    it('unknown session and unknown task → 404 with codes', async () => {
      const c = await emulator.start();
      expect((await c.newTask('nope', 'x')).json).toMatchObject({ success: false, code: 'SESSION_NOT_FOUND' });
      expect((await c.terminate('nope')).status).toBe(404);
      const sid = await c.openSession();
      const r = await c.poll(sid, 'missing');
      expect(r.status).toBe(404);
      expect(r.json).toMatchObject({ success: false, code: 'TASK_NOT_FOUND' });
      expect((await c.poll('nope', 'missing')).json.code).toBe('SESSION_NOT_FOUND');
    });

    it('TASK_ALREADY_RUNNING while a task is pending, and no behaviour is consumed by the refusal', async () => {
      const c = await emulator.start({ pendingPolls: 1 });
      c.emu.enqueueTasks({ outcome: 'completed', pendingPolls: 1 }, { outcome: 'failed', pendingPolls: 0 });
      const sid = await c.openSession();
      const first = await c.task(sid, 'first');
      const second = await c.newTask(sid, 'second');
      expect(second.status).toBe(409);
      expect(second.json).toMatchObject({ success: false, code: 'TASK_ALREADY_RUNNING' });
      expect((await c.poll(sid, first)).json.pending).toBe(true);
      expect((await c.poll(sid, first)).json.type).toBe('task_completed');
      const third = await c.task(sid, 'third');
      expect((await c.poll(sid, third)).json).toMatchObject({ status: 'failed' }); // got the 2nd behaviour
    });

    it('state stop marks the running task failed "stopped"; pause/resume answer success', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'stuck' });
      const sid = await c.openSession();
      const t = await c.task(sid, 'forever');
      for (const newState of ['pause', 'resume', 'stop']) {
        const r = await c.send(sid, { actionType: 'state', newState });
        expect(r.status).toBe(200);
        expect(r.json.success).toBe(true);
      }
      expect((await c.poll(sid, t)).json).toEqual({ success: true, sessionId: sid, taskId: t, status: 'failed', error: 'stopped' });
    });

    it('terminateOnCompletion ends the session when the task completes', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      const sid = await c.openSession();
      const t = await c.task(sid, 'last one', { terminateOnCompletion: true });
      expect((await c.poll(sid, t)).json.type).toBe('task_completed');
      expect(c.emu.ledger()).toMatchObject({ terminated: 1, open: 0 });
      expect(c.emu.ledger().sessions[0]).toMatchObject({ terminatedBy: 'self', terminateCalls: 0 });
    });
  });

  describe('auth', () => {
    it('with apiKey: missing header or wrong key → 401 INVALID_API_KEY; the key is never recorded', async () => {
      const c = await emulator.start();
      const none = await c.call('POST', '/start/start-session', { mode: 'default' }, { auth: null });
      expect(none.status).toBe(401);
      expect(none.json).toEqual({ success: false, error: 'Invalid API key', code: 'INVALID_API_KEY' });
      const wrong = await c.call('POST', '/start/start-session', { mode: 'default' }, { auth: 'Bearer not-the-key' });
      expect(wrong.status).toBe(401);
      expect((await c.call('GET', '/task/a/b', undefined, { auth: `Basic ${KEY}` })).status).toBe(401);
      expect((await c.startSession()).status).toBe(200);
      const l = c.emu.ledger();
      expect(l.created).toBe(1);
      expect(l.requests.map((r) => r.authorization)).toEqual(['missing', 'invalid', 'invalid', 'valid']);
      expect(JSON.stringify(l)).not.toContain(KEY);
    });

    it('without apiKey: any non-empty Bearer token is accepted', async () => {
      const emu = await startEmulator();
      try {
        const c = new Client(emu);
        expect((await c.call('POST', '/start/start-session', {}, { auth: 'Bearer anything' })).status).toBe(200);
        expect((await c.call('POST', '/start/start-session', {}, { auth: 'Bearer ' })).status).toBe(401);
        expect((await c.call('POST', '/start/start-session', {}, { auth: null })).status).toBe(401);
      } finally {
        await emu.close();
      }
    });
  });

  describe('task outcomes', () => {
    it('inline completion comes back in the send-message answer (wrapped result, as the vendor example)', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'completed', inline: true, data: { message: 'Added item to cart', files: [] } });
      const sid = await c.openSession();
      const r = await c.newTask(sid, 'Now add the first item to cart');
      expect(r.json).toEqual({ success: true, sessionId: sid, taskId: expect.any(String), result: { type: 'task_completed', data: { message: 'Added item to cart', files: [] } } });
      expect(c.emu.ledger().sessions[0].tasks[0]).toMatchObject({ status: 'completed', polls: 0 });
    });

    // The type leaves the outcome out as the docs do (it defaults to completed): test/types.test.ts type-checks this.
    it('a behaviour scripted in code without an outcome completes', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ inline: true, data: { message: 'Found 3 kettles', files: [] } });
      const sid = await c.openSession();
      const r = await c.newTask(sid, 'Search for kettles');
      expect(r.json).toMatchObject({ result: { type: 'task_completed', data: { message: 'Found 3 kettles', files: [] } } });
      expect(c.emu.ledger().sessions[0].tasks[0]).toMatchObject({ outcome: 'completed', status: 'completed' });
    });

    it('sendHoldMs: a task finishing within the hold is answered inline; a stuck one pending after the hold', async () => {
      const c = await emulator.start({ sendHoldMs: 150 });
      c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 30 }, { outcome: 'stuck' });
      const sid = await c.openSession();
      const a = await c.newTask(sid, 'quick');
      expect(a.json).toMatchObject({ result: { type: 'task_completed' } });
      const t0 = Date.now();
      const b = await c.newTask(sid, 'slow');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      expect(b.json.pending).toBe(true);
    });

    it('sendHoldMs: a guardrail resume is held like a newTask: what the task stops at within the hold is in its answer', async () => {
      // API-NOTES: send-message holds up to ~50 s, and a task finished by then comes back in that answer; a guardrail
      // answer is a send-message, so a client must be ready for a held resume (and its finished task), not only pending.
      const c = await emulator.start({ sendHoldMs: 5_000 });
      c.emu.enqueueTasks({ outcome: 'completed', questions: ['Which size?', 'Gift wrap?'], pendingMs: 30 });
      const sid = await c.openSession();
      const first = await c.newTask(sid, 'Buy a shirt');
      expect(first.json).toMatchObject({ result: { type: 'guardrail_trigger', data: { value: 'Which size?' } } });
      const second = await c.answer(sid, 'resume', 'M');
      expect(second.json).toMatchObject({ success: true, taskId: first.json.taskId, result: { type: 'guardrail_trigger', data: { value: 'Gift wrap?' } } });
      const done = await c.answer(sid, 'resume', 'no');
      expect(done.json).toMatchObject({ success: true, taskId: first.json.taskId, result: { type: 'task_completed' } });
      expect(done.json.pending).toBeUndefined();
      expect(c.emu.ledger().sessions[0].tasks[0]).toMatchObject({ status: 'completed', answers: [{ newState: 'resume' }, { newState: 'resume' }] });
    });

    it('a session terminated while send-message holds its task ends the task: the held answer is no completion', async () => {
      const c = await emulator.start({ sendHoldMs: 1_500 });
      c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 800 });
      const sid = await c.openSession();
      const held = c.newTask(sid, 'held');
      // Terminated as soon as the task exists, well inside its 800 ms.
      while (c.emu.ledger().sessions[0].tasks.length === 0) await sleep(5);
      expect((await c.terminate(sid)).status).toBe(200);
      const answer = await held;
      expect(answer.json.result).not.toMatchObject({ type: 'task_completed' });
      expect(c.emu.ledger().sessions[0].tasks[0]).toMatchObject({ status: 'failed' });
    });

    it('ending a session ends its running task: its status and cost stop there', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'stuck', costPerSecond: 1 });
      const sid = await c.openSession();
      await c.newTask(sid, 'runs on');
      await sleep(100);
      await c.terminate(sid);
      const first = c.emu.ledger().sessions[0].tasks[0];
      expect(first).toMatchObject({ status: 'failed' });
      await sleep(300);
      expect(c.emu.ledger().sessions[0].tasks[0].cost).toBe(first.cost);
    });

    it('a guardrail answer that resumes a task while another runs is refused, 409, as a second task is', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'guardrail', inline: true }, { outcome: 'stuck' });
      const sid = await c.openSession();
      await c.task(sid, 'A stops at a question');
      await c.task(sid, 'B runs');
      const resumed = await c.answer(sid, 'resume', 'yes');
      expect(resumed.status).toBe(409);
      expect(resumed.json.code).toBe('TASK_ALREADY_RUNNING');
      expect(c.emu.ledger().sessions[0].tasks.map((t) => t.status)).toEqual(['guardrail', 'pending']);
    });

    it('start-session checks initialTask.secrets as a newTask\'s are, and a body nested too deep is a 400, not a 500', async () => {
      const c = await emulator.start();
      expect((await c.startSession({ initialTask: { secrets: 'bad' } })).status).toBe(400);
      const deep = `{"mode":"default","x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
      const r = await c.call('POST', '/start/start-session', undefined, { raw: deep });
      expect(r.status).toBe(400);
      expect(r.json.code).toBe('INVALID_REQUEST');
    });

    it('pendingMs keeps a task pending until that time has passed', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 300 });
      const sid = await c.openSession();
      const t = await c.task(sid, 'timed');
      expect((await c.poll(sid, t)).json.pending).toBe(true);
      await sleep(320);
      expect((await c.poll(sid, t)).json.type).toBe('task_completed');
    });

    it('guardrail: top-level at the poll URL, wrapped inline; answering resume completes, stop fails', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks(
        { outcome: 'guardrail' },
        { outcome: 'guardrail', inline: true, question: 'Confirm the purchase?' },
        { outcome: 'guardrail', inline: true },
      );
      const sid = await c.openSession();
      const t = await c.task(sid, 'Log in');
      const g = await c.poll(sid, t);
      expect(g.json).toEqual({ type: 'guardrail_trigger', data: { type: 'human_input_needed', value: 'I need login credentials' } });
      const resume = await c.answer(sid, 'resume', 'user / pass');
      expect(resume.json).toMatchObject({ success: true, taskId: t, pending: true });
      expect((await c.poll(sid, t)).json.type).toBe('task_completed');

      const inline = await c.newTask(sid, 'Buy it');
      expect(inline.json).toEqual({
        success: true,
        sessionId: sid,
        taskId: expect.any(String),
        result: { type: 'guardrail_trigger', data: { type: 'human_input_needed', value: 'Confirm the purchase?' } },
      });
      await c.answer(sid, 'stop', 'no');
      expect((await c.poll(sid, str(inline.json.taskId))).json).toMatchObject({ status: 'failed', error: 'stopped' });
    });

    it('failed: status "failed" with the reason, at the poll URL and inline', async () => {
      const c = await emulator.start({ pendingPolls: 1 });
      c.emu.enqueueTasks({ outcome: 'failed' }, { outcome: 'failed', inline: true, reason: 'Element not found' });
      const sid = await c.openSession();
      const t = await c.task(sid, 'Click the thing');
      expect((await c.poll(sid, t)).json.pending).toBe(true);
      expect((await c.poll(sid, t)).json).toEqual({ success: true, sessionId: sid, taskId: t, status: 'failed', error: 'Navigation failed: page did not load' });
      const i = await c.newTask(sid, 'Click the other thing');
      expect(i.json).toEqual({ success: true, sessionId: sid, taskId: expect.any(String), status: 'failed', error: 'Element not found' });
    });

    it("'status' shape: status pending/active with running usage, then status complete with a wrapped result", async () => {
      const c = await emulator.start({ shape: 'status', pendingPolls: 2 });
      const sid = await c.openSession();
      const t = await c.newTask(sid, 'Find the price');
      const tid = str(t.json.taskId);
      const usage = { inputTokens: expect.any(Number), outputTokens: expect.any(Number), cost: expect.any(Number) };
      expect(t.json).toEqual({ success: true, sessionId: sid, taskId: tid, status: 'pending', pollUrl: expect.stringContaining(`/task/${sid}/`), usage });
      const p1 = await c.poll(sid, tid);
      const p2 = await c.poll(sid, tid);
      expect([p1.json.status, p2.json.status]).toEqual(['active', 'pending']);
      expect(p1.json.pending).toBeUndefined();
      expect(p2.json.usage).toEqual(usage);
      const done = await c.poll(sid, tid);
      expect(done.json).toEqual({
        success: true,
        sessionId: sid,
        taskId: tid,
        status: 'complete',
        result: { type: 'task_completed', data: { message: expect.stringContaining('Find the price'), inputTokens: expect.any(Number), outputTokens: expect.any(Number) } },
        usage,
      });
      expect(done.json.type).toBeUndefined();
    });

    it('per-task shape overrides the default; status-shape guardrail is wrapped in result', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'guardrail', shape: 'status' });
      const sid = await c.openSession();
      const t = await c.newTask(sid, 'x');
      expect(t.json.status).toBe('pending');
      const g = await c.poll(sid, str(t.json.taskId));
      expect(g.json).toMatchObject({ success: true, result: { type: 'guardrail_trigger', data: { type: 'human_input_needed' } } });
      expect(g.json.type).toBeUndefined();
    });

    it('structured_json: message is JSON equal to data.output, generated from the schema', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      const sid = await c.openSession();
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
      const t = await c.task(sid, 'Get the product', { outputType: 'structured_json', outputSchema });
      const data = obj((await c.poll(sid, t)).json.data);
      const parsed = obj(JSON.parse(str(data.message)));
      expect(parsed).toEqual(data.output);
      expect(Object.keys(parsed).sort()).toEqual(Object.keys(outputSchema.properties).sort());
      expect(parsed).toMatchObject({ title: expect.any(String), price: expect.any(Number), inStock: expect.any(Boolean), condition: 'new', seller: { name: expect.any(String) } });
      expect(Number.isInteger(parsed.rating) && Number(parsed.rating) >= 1 && Number(parsed.rating) <= 5).toBe(true);
      expect(parsed.tags).toHaveLength(1);
      expect(() => new URL(str(parsed.url))).not.toThrow();

      const bare = await c.task(sid, 'Anything', { outputType: 'structured_json', outputSchema: { type: 'object' } });
      const bareData = obj((await c.poll(sid, bare)).json.data);
      expect(JSON.parse(str(bareData.message))).toEqual({ result: expect.stringContaining('Anything') });

      const csv = await c.task(sid, 'Table', { outputType: 'structured_csv', outputSchema: { type: 'object', properties: { name: { type: 'string' }, qty: { type: 'integer' } } } });
      const lines = str(obj((await c.poll(sid, csv)).json.data).message).trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toBe('name,qty');
    });

    it('run-task: completed inline, recorded as a session created and terminated by itself', async () => {
      const c = await emulator.start();
      const r = await c.call('POST', '/start/run-task', { taskDetails: 'Search Google for Anthropic and return the first result' });
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ success: true, sessionId: expect.any(String), taskId: expect.any(String), result: { type: 'task_completed', data: { message: expect.stringContaining('Anthropic') } } });
      const l = c.emu.ledger();
      expect(l).toMatchObject({ created: 1, terminated: 1, open: 0 });
      expect(l.sessions[0]).toMatchObject({ sessionId: r.json.sessionId, terminatedBy: 'self', terminateCalls: 0, tasks: [{ status: 'completed' }] });
      expect((await c.call('POST', '/start/run-task', { taskDetails: '' })).json.code).toBe('INVALID_REQUEST');
      expect(c.emu.ledger().created).toBe(1);
    });
  });

  describe('faults', () => {
    it('429 with Retry-After and RATE_LIMIT_EXCEEDED, once by default; the faulted request did nothing', async () => {
      const c = await emulator.start();
      c.emu.injectFault({ endpoint: 'start', status: 429, retryAfterSeconds: 7 });
      const r = await c.startSession();
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('7');
      expect(r.json).toMatchObject({ success: false, code: 'RATE_LIMIT_EXCEEDED', error: expect.any(String) });
      expect((await c.startSession()).status).toBe(200);
      const l = c.emu.ledger();
      expect(l.created).toBe(1);
      expect(l.requests.map((x) => [x.status, x.fault ?? false])).toEqual([
        [429, true],
        [200, false],
      ]);
    });

    it('503 INSTANCE_UNAVAILABLE on send does not consume the queued behaviour', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'failed', inline: true });
      c.emu.injectFault({ endpoint: 'send', status: 503, code: 'INSTANCE_UNAVAILABLE' });
      const sid = await c.openSession();
      const r = await c.newTask(sid, 'x');
      expect(r.status).toBe(503);
      expect(r.json).toMatchObject({ success: false, code: 'INSTANCE_UNAVAILABLE' });
      expect((await c.newTask(sid, 'x')).json.status).toBe('failed');
      expect(c.emu.ledger().sessions[0].tasks).toHaveLength(1);
    });

    it('skip/times target "the 2nd and 3rd poll"; code alone implies the status', async () => {
      const c = await emulator.start({ pendingPolls: 5 });
      c.emu.injectFault({ endpoint: 'poll', code: 'INSTANCE_UNAVAILABLE', skip: 1, times: 2 });
      const sid = await c.openSession();
      const t = await c.task(sid, 'x');
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await c.poll(sid, t)).status);
      expect(statuses).toEqual([200, 503, 503, 200, 200]);
      expect(c.emu.ledger().sessions[0].tasks[0].polls).toBe(3); // faulted polls never reached the task
    });

    it('rules are applied in order: 429 then 500 on consecutive requests; Infinity applies forever', async () => {
      const c = await emulator.start();
      c.emu.injectFault({ endpoint: 'any', status: 429 });
      c.emu.injectFault({ endpoint: 'start', status: 500 });
      expect((await c.startSession()).status).toBe(429);
      expect((await c.startSession()).status).toBe(500);
      expect((await c.startSession()).status).toBe(200);
      c.emu.injectFault({ endpoint: 'run-task', status: 402, times: Infinity });
      for (let i = 0; i < 3; i++) expect((await c.call('POST', '/start/run-task', { taskDetails: 'x' })).json.code).toBe('INSUFFICIENT_BALANCE');
    });

    it('latency alone delays then answers normally', async () => {
      const c = await emulator.start();
      c.emu.injectFault({ endpoint: 'start', latencyMs: 150 });
      const t0 = Date.now();
      const r = await c.startSession();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      expect(r.status).toBe(200);
      expect(r.json.sessionId).toEqual(expect.any(String));
    });

    it('hangup destroys the socket without an answer', async () => {
      const c = await emulator.start();
      c.emu.injectFault({ endpoint: 'start', hangup: true });
      await expect(c.startSession()).rejects.toThrow();
      expect(c.emu.ledger()).toMatchObject({ created: 0, requests: [{ status: 0, fault: true }] });
      expect((await c.startSession()).status).toBe(200);
    });

    it('raw non-JSON body with the given status', async () => {
      const c = await emulator.start();
      c.emu.injectFault({ endpoint: 'poll', rawBody: '<html>oops</html>', status: 502 });
      const r = await c.poll('a', 'b');
      expect(r.status).toBe(502);
      expect(r.text).toBe('<html>oops</html>');
      expect(r.parsed).toBe(false);
      expect(r.headers.get('content-type')).toContain('text/html');
    });

    it('a fault on terminate leaves the session open; the retry terminates it exactly once', async () => {
      const c = await emulator.start();
      c.emu.injectFault({ endpoint: 'terminate', status: 500 });
      const sid = await c.openSession();
      expect((await c.newTask(sid, 'not affected')).status).toBe(200); // 'send' excludes terminate, and vice versa
      expect((await c.terminate(sid)).status).toBe(500);
      expect(c.emu.ledger()).toMatchObject({ open: 1, terminated: 0 });
      expect((await c.terminate(sid)).status).toBe(200);
      expect(c.emu.ledger().sessions[0]).toMatchObject({ terminateCalls: 1, terminateRequests: 1 });
    });
  });

  describe('session expiry', () => {
    it('an idle session expires (found by the sweep, then SESSION_EXPIRED on use); activity keeps one alive', async () => {
      // Idle after 1 s; the busy session is polled every ~30 ms until the idle one has expired, so only a 1 s stall of
      // the test process could expire it, or open the two sessions so far apart that they were never open together
      // (400 ms did, once, on a busy machine).
      const c = await emulator.start({ sessionIdleMs: 1_000 });
      const idle = await c.openSession();
      const busy = await c.openSession();
      const t = await c.task(busy, 'keep alive');
      for (let i = 0; c.emu.ledger().expired === 0; i++) {
        expect(i, 'the idle session expired within 3 s').toBeLessThan(100);
        await sleep(30);
        expect((await c.poll(busy, t)).status).toBe(200);
      }
      const l = c.emu.ledger();
      expect(l).toMatchObject({ created: 2, expired: 1, open: 1, terminated: 0, maxOpen: 2 });
      const idleRec = l.sessions.find((s) => s.sessionId === idle);
      expect(idleRec?.expiredAt).toBeGreaterThanOrEqual((idleRec?.createdAt ?? Infinity) + 1_000);
      const r = await c.newTask(idle, 'too late');
      expect(r.status).toBe(404);
      expect(r.json.code).toBe('SESSION_EXPIRED');
      expect((await c.terminate(idle)).json.code).toBe('SESSION_EXPIRED');
      expect(c.emu.ledger().sessions.find((s) => s.sessionId === idle)).toMatchObject({ terminateCalls: 0, terminateRequests: 1 });
      expect((await c.terminate(busy)).status).toBe(200);
    });
  });

  describe('validation and routing', () => {
    it('bad JSON and invalid fields → 400 INVALID_REQUEST; unknown route → 404 JSON; wrong method → 405', async () => {
      const c = await emulator.start();
      const bad = await c.call('POST', '/start/start-session', undefined, { raw: '{"mode": ' });
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ success: false, code: 'INVALID_REQUEST', error: expect.stringMatching(/valid JSON/) });
      const badSend = await c.call('POST', '/start/send-message', undefined, { raw: 'sessionId=1' });
      expect(badSend.status).toBe(400);
      expect(badSend.json.error).toMatch(/valid JSON/);
      for (const body of [[1], 'x', { mode: 'turbo' }, { initialTask: { maxDuration: 0 } }, { initialTask: { maxDuration: 300001 } }]) {
        expect((await c.startSession(body)).json.code, JSON.stringify(body)).toBe('INVALID_REQUEST');
      }
      expect((await c.startSession({ initialTask: { maxDuration: 300000, taskDetails: '' } })).status).toBe(200);
      const sid = c.emu.ledger().sessions[0].sessionId;
      for (const m of [
        { actionType: 'newTask', newState: 'start' },
        { actionType: 'newTask', newState: 'start', taskDetails: '  ' },
        { actionType: 'newTask', taskDetails: 'x' },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', maxDuration: 300001 },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', outputType: 'xml' },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', secrets: [{ match: '*.example.com', secret: 'webrun-sfn/x' }] },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', secrets: [{ match: '', fields: { user: 'a' } }] },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', secrets: { match: '*.example.com', fields: { user: 'a' } } },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', webhook: { url: 'not a url' } },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', webhook: { url: 'ftp://127.0.0.1/x' } },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', webhook: { url: 'http://127.0.0.1/x', auth: 7 } },
        { actionType: 'newTask', newState: 'start', taskDetails: 'x', webhook: { url: 'http://127.0.0.1/x', submittedData: 'everything' } },
        { actionType: 'dance' },
        { actionType: 'state', newState: 'explode' },
        'hello',
      ]) {
        const r = await c.send(sid, m);
        expect(r.status, JSON.stringify(m)).toBe(400);
        expect(r.json.code).toBe('INVALID_REQUEST');
      }
      expect((await c.call('POST', '/start/send-message', { message: { actionType: 'state', newState: 'pause' } })).status).toBe(400);
      expect(c.emu.ledger().sessions[0].tasks).toHaveLength(0);

      const nf = await c.call('GET', '/nope');
      expect(nf.status).toBe(404);
      expect(nf.json).toMatchObject({ success: false, code: 'NOT_FOUND' });
      expect(nf.headers.get('content-type')).toContain('application/json');
      const wm = await c.call('GET', '/start/start-session');
      expect(wm.status).toBe(405);
      expect(wm.json.success).toBe(false);
    });

    it('control endpoints: health, queue tasks, inject faults, ledger, reset', async () => {
      const c = await emulator.start();
      const health = await c.call('GET', '/', undefined, { auth: null });
      expect(health.json).toEqual({ ok: true, name: 'webrun-emulator' });
      const noAuth = { auth: null };
      expect((await c.call('POST', '/__emulator/tasks', [{ outcome: 'failed', pendingPolls: 0, reason: 'scripted' }], noAuth)).status).toBe(200);
      expect((await c.call('POST', '/__emulator/faults', [{ endpoint: 'poll', status: 500, times: null }], noAuth)).status).toBe(200);
      expect((await c.call('POST', '/__emulator/tasks', [{ outcome: 'maybe' }], noAuth)).status).toBe(400);
      expect((await c.call('POST', '/__emulator/faults', [{ endpoint: 'everywhere' }], noAuth)).status).toBe(400);
      const partly = await c.call('POST', '/__emulator/tasks', [{ outcome: 'completed' }, { outcome: 'maybe' }], noAuth);
      expect(partly.status).toBe(400); // nothing of an invalid list is queued, for tasks and for faults
      expect((await c.call('POST', '/__emulator/faults', [{ endpoint: 'start', status: 500 }, { endpoint: 'x' }], noAuth)).status).toBe(400);
      expect((await c.call('POST', '/__emulator/faults', undefined, { auth: null, raw: 'nope' })).status).toBe(400);
      // A misspelt field or a wrong type is refused by name, not ignored (the rule would eat a request doing nothing).
      const misspelt = await c.call('POST', '/__emulator/faults', [{ endpoint: 'start', stauts: 503 }], noAuth);
      expect(misspelt.status).toBe(400);
      expect(misspelt.text).toContain('\\"stauts\\" is not a field of a fault rule');
      expect((await c.call('POST', '/__emulator/faults', [{ endpoint: 'start', hangup: 'false' }], noAuth)).status).toBe(400);
      expect((await c.call('POST', '/__emulator/faults', [{ endpoint: 'start', status: 503, error: { nested: true } }], noAuth)).status).toBe(400);
      expect((await c.call('POST', '/__emulator/tasks', [{ outcome: 'completed', doorbell: { early: true, bogus: 1 } }], noAuth)).status).toBe(400);

      const sid = await c.openSession();
      const t = await c.task(sid, 'x');
      for (let i = 0; i < 2; i++) expect((await c.poll(sid, t)).status).toBe(500); // times: null = Infinity
      const l = await c.call('GET', '/__emulator/ledger', undefined, noAuth);
      expect(l.json).toMatchObject({ created: 1, open: 1, maxOpen: 1, doorbells: [], sessions: [{ sessionId: sid, tasks: [{ outcome: 'failed' }] }] });
      expect(l.json.requests).toHaveLength(4); // control requests are not recorded
      // Not with a wrong method either; an API request refused as too large is.
      expect((await c.call('GET', '/__emulator/tasks', undefined, noAuth)).status).toBe(405);
      expect((await c.call('POST', '/start/start-session', undefined, { raw: `{"x":"${'y'.repeat(1_100_000)}"}` })).status).toBe(413);
      const requests = c.emu.ledger().requests;
      expect(requests.filter((q) => q.path.startsWith('/__emulator'))).toEqual([]);
      expect(requests.at(-1)).toMatchObject({ method: 'POST', path: '/start/start-session', status: 413 });

      expect((await c.call('POST', '/__emulator/reset', undefined, noAuth)).status).toBe(200);
      expect(c.emu.ledger()).toEqual({ sessions: [], created: 0, terminated: 0, open: 0, expired: 0, maxOpen: 0, requests: [], doorbells: [] });
      const sid2 = await c.openSession();
      const t2 = await c.task(sid2, 'y');
      expect((await c.poll(sid2, t2)).status).toBe(200); // faults cleared
    });

    it('the ledger keeps no site credentials or guardrail answers: field names kept, values "[redacted]", in-process reveal only', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'guardrail', inline: true, question: 'Enter your PIN' }, { outcome: 'guardrail', inline: true });
      const VALUES = ['pw-INITIAL-5d1e', 'ada-USER-93c0', 'pw-TASK-0b7a', '4711-PIN-e2f8', 'pw-RUN-61aa'];
      const [initial, user, password, pin, run] = VALUES;
      const s = await c.startSession({ mode: 'default', initialTask: { taskDetails: 'x', secrets: [{ match: 'a.example.com', fields: { password: initial } }] } });
      const sid = str(s.json.sessionId);
      const login = await c.task(sid, 'Log in', { secrets: [{ match: '*.shop.example.com', fields: { username: user, password, blank: '' } }] });
      expect((await c.answer(sid, 'resume', pin)).status).toBe(200);
      expect((await c.poll(sid, login)).json.type).toBe('task_completed');
      await c.task(sid, 'Buy it');
      expect((await c.send(sid, { actionType: 'guardrail', newState: 'stop' })).status).toBe(200); // no answer text: nothing to hide
      expect((await c.call('POST', '/start/run-task', { taskDetails: 'r', secrets: [{ match: 'b.example.com', fields: { pin: run } }] })).status).toBe(200);

      const shown = await c.call('GET', '/__emulator/ledger', undefined, { auth: null });
      for (const v of VALUES) expect(shown.text).not.toContain(v);
      for (const ledger of [shown.json, c.emu.ledger()]) {
        const [session, ran] = ledger.sessions as Array<{ startBody: unknown; tasks: Array<{ body: unknown; answers: unknown }> }>;
        expect(session.startBody).toMatchObject({ initialTask: { secrets: [{ match: 'a.example.com', fields: { password: '[redacted]' } }] } });
        expect(session.tasks[0].body).toMatchObject({ secrets: [{ match: '*.shop.example.com', fields: { username: '[redacted]', password: '[redacted]', blank: '' } }] });
        expect(session.tasks[0].answers).toEqual([{ question: 'Enter your PIN', answer: '[redacted]', newState: 'resume' }]);
        expect(session.tasks[1].answers).toEqual([{ question: 'I need login credentials', answer: '', newState: 'stop' }]);
        for (const body of [ran.startBody, ran.tasks[0].body]) expect(body).toMatchObject({ secrets: [{ match: 'b.example.com', fields: { pin: '[redacted]' } }] });
      }
      expect(JSON.stringify(c.emu.ledger())).not.toMatch(/INITIAL|USER|TASK|PIN-|RUN-/);

      // A test that must know what reached the API asks in-process; asking does not change what the ledger shows.
      const revealed = c.emu.ledger({ reveal: true });
      expect(revealed.sessions[0].startBody).toMatchObject({ initialTask: { secrets: [{ fields: { password: initial } }] } });
      expect(revealed.sessions[0].tasks[0].body).toMatchObject({ secrets: [{ fields: { username: user, password, blank: '' } }] });
      expect(revealed.sessions[0].tasks[0].answers).toEqual([{ question: 'Enter your PIN', answer: pin, newState: 'resume' }]);
      expect(revealed.sessions[1].tasks[0].body).toMatchObject({ secrets: [{ fields: { pin: run } }] });
      const again = await c.call('GET', '/__emulator/ledger?reveal=true', undefined, { auth: null });
      for (const v of VALUES) expect(again.text).not.toContain(v);
      expect(JSON.stringify(c.emu.ledger())).not.toContain(password);
    });

    it('enqueueTasks and injectFault reject invalid input; close() stops listening', async () => {
      const c = await emulator.start();
      expect(() => c.emu.enqueueTasks({ outcome: 'nope' as never })).toThrow(/outcome/);
      expect(() => c.emu.injectFault({ endpoint: 'nowhere' as never })).toThrow(/endpoint/);
      await c.emu.close();
      await expect(fetch(`${c.emu.url}/`)).rejects.toThrow();
    });

    it('the request log never contains the key or bodies', async () => {
      const lines: string[] = [];
      const c = await emulator.start({ log: (l) => lines.push(l) });
      await c.startSession({ mode: 'default', initialTask: { taskDetails: 'secret-task-text' } });
      await c.call('GET', '/nope');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^POST \/start\/start-session 200 \d+ms$/);
      expect(lines.join('\n')).not.toContain(KEY);
      expect(lines.join('\n')).not.toContain('secret-task-text');
    });

    it('startEmulator refuses invalid options by name', async () => {
      await expect(startEmulator({ maxSessions: -1 })).rejects.toThrow(/maxSessions/);
      await expect(startEmulator({ balance: Number.NaN })).rejects.toThrow(/balance/);
      await expect(startEmulator({ costPerSecond: -0.1 })).rejects.toThrow(/costPerSecond/);
      await expect(startEmulator({ doorbell: { duplicate: 0 } })).rejects.toThrow(/duplicate/);
    });
  });
});

// Alone, after the concurrent tests: it patches the prototype of every emulator's timers.
describe('idle connections', () => {
  it('the emulator and the doorbell receiver tell clients to keep idle connections a minute, not Node\'s 5 s', async () => {
    // A client keeps an idle connection as long as the server's Keep-Alive says (fetch a second less): at Node's 5 s
    // default, a client that stalled reused a connection the server was closing, and a busy batch's sends failed.
    const emu = await startEmulator({ apiKey: KEY });
    const receiver = await startReceiver(async () => ({ status: 202, body: { outcome: 'not-ended' } }));
    try {
      const served = await fetch(`${emu.url}/__emulator/ledger`);
      await served.text();
      const rung = await fetch(`${receiver.url}/x`, { method: 'POST' });
      await rung.text();
      for (const answer of [served, rung]) expect(answer.headers.get('keep-alive')).toBe('timeout=65');
    } finally {
      await receiver.close();
      await emu.close();
    }
  });
});

describe('task outcomes, with timers that fire early', () => {
  it('sendHoldMs: a hold whose timers fire a few milliseconds early, again and again, still answers the quick task inline', async () => {
    const sleepAsWritten = Timers.prototype.sleep;
    // setTimeout may fire a millisecond before Date.now() reaches its target, and on a busy machine the timer for
    // the rest may do it again: here every sleep ends 5 ms early.
    const early = vi.spyOn(Timers.prototype, 'sleep').mockImplementation(function (this: Timers, ms: number) {
      return sleepAsWritten.call(this, ms - 5);
    });
    try {
      const c = await emulator.start({ sendHoldMs: 150 });
      c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 30 });
      const sid = await c.openSession();
      expect((await c.newTask(sid, 'quick')).json).toMatchObject({ result: { type: 'task_completed' } });
    } finally {
      early.mockRestore();
    }
  });
});
