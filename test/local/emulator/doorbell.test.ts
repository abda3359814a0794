/** Webhook doorbells: when and how they ring, as scripted; forged bells; loopback only; never the auth. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { Emulator, TaskStatus } from '../../../local/emulator';
import { isLoopbackHost } from '../../../local/emulator/doorbell';
import { emulatorPerTest, obj, sleep, str, until, type Client } from './harness';

const emulator = emulatorPerTest();
const AUTH = 'doorbell-auth-5e1f';

interface Bell {
  method: string;
  /** Path and query as received. */
  path: string;
  authorization?: string;
  body: string;
  receivedAt: number;
  /** The emulator's ledger status of the task the bell names, when it arrived. */
  taskStatus?: TaskStatus;
}

interface Receiver {
  url: string;
  bells: Bell[];
  /** Resolves once `n` bells have arrived (rejects after 5 s). */
  next(n: number): Promise<Bell[]>;
  close(): Promise<void>;
}

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A webhook receiver on 127.0.0.1 that answers `status` and notes what the emulator says about the task. */
async function receiver(status = 204, emu?: Emulator): Promise<Receiver> {
  const bells: Bell[] = [];
  const waiters: Array<() => void> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const bell: Bell = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body, receivedAt: Date.now() };
      try {
        const taskId = (JSON.parse(body) as { taskId?: unknown }).taskId;
        const task = emu?.ledger().sessions.flatMap((s) => s.tasks).find((t) => t.taskId === taskId);
        if (task) bell.taskStatus = task.status;
      } catch {
        // not JSON: a forged bell
      }
      bells.push(bell);
      res.writeHead(status).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    bells,
    next(n: number): Promise<Bell[]> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${bells.length} of ${n} bells arrived`)), 5000);
        const check = (): void => {
          if (bells.length >= n) {
            clearTimeout(timer);
            resolve(bells.slice(0, n));
          } else waiters.push(check);
        };
        check();
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const webhook = (url: string, nonce = 'n0nce-1'): Record<string, unknown> => ({
  webhook: { name: 'task-done', url: `${url}/hook/${nonce}?sig=query-secret`, auth: AUTH, submittedData: 'just_ping' },
});

async function sendWithWebhook(c: Client, r: Receiver, taskDetails = 'x'): Promise<{ sid: string; tid: string; sentAt: number }> {
  const sid = await c.openSession();
  const sentAt = Date.now();
  const tid = await c.task(sid, taskDetails, webhook(r.url));
  return { sid, tid, sentAt };
}

describe.concurrent('webhook doorbells (tests run concurrently, each with its own emulator and receiver)', () => {
  describe('doorbells of tasks sent with a webhook', () => {
    it('rings once when the task completes, by time and without any poll: POST, body, Bearer auth; the ledger keeps no auth or query', async () => {
      const c = await emulator.start();
      const r = await receiver(204, c.emu);
      const { sid, tid, sentAt } = await sendWithWebhook(c, r);
      const [bell] = await r.next(1);
      expect(bell).toMatchObject({ method: 'POST', path: '/hook/n0nce-1?sig=query-secret', authorization: `Bearer ${AUTH}`, taskStatus: 'completed' });
      expect(JSON.parse(bell.body)).toEqual({ type: 'task_completed', sessionId: sid, taskId: tid });
      expect(bell.receivedAt - sentAt).toBeGreaterThanOrEqual(150); // webhookPendingMs defaults to 200

      await c.emu.doorbellsSettled();
      const l = c.emu.ledger();
      expect(l.doorbells).toEqual([
        { kind: 'task', sessionId: sid, taskId: tid, type: 'task_completed', url: `${r.url}/hook/n0nce-1`, at: expect.any(Number), state: 'answered', status: 204 },
      ]);
      expect(l.sessions[0].tasks[0]).toMatchObject({ status: 'completed', polls: 0, body: { webhook: { url: `${r.url}/hook/n0nce-1`, auth: '[redacted]' } } });
      expect(JSON.stringify(l)).not.toContain(AUTH);
      expect(JSON.stringify(l)).not.toContain('query-secret');
      expect((await c.poll(sid, tid)).json.type).toBe('task_completed'); // the confirming GET
      await sleep(50);
      expect(r.bells).toHaveLength(1);
    });

    it('a webhook task ends by pendingMs (or webhookPendingMs) and ignores pendingPolls', async () => {
      const c = await emulator.start({ webhookPendingMs: 20 });
      const r = await receiver(200, c.emu);
      c.emu.enqueueTasks({ outcome: 'completed', pendingPolls: 50, pendingMs: 120 }, { outcome: 'completed', pendingPolls: 50 });
      const first = await sendWithWebhook(c, r);
      const [a] = await r.next(1);
      expect(a.receivedAt - first.sentAt).toBeGreaterThanOrEqual(110);
      const secondSentAt = Date.now();
      await c.task(first.sid, 'second', webhook(r.url));
      const [, b] = await r.next(2);
      expect(b.receivedAt - secondSentAt).toBeLessThan(2000);
      expect(c.emu.ledger().sessions[0].tasks.map((t) => [t.status, t.polls])).toEqual([
        ['completed', 0],
        ['completed', 0],
      ]);
    });

    it('rings guardrail_trigger at each question and task_completed after the last answer', async () => {
      const c = await emulator.start();
      const r = await receiver(200, c.emu);
      c.emu.enqueueTasks({ outcome: 'guardrail', questions: ['Q1', 'Q2'], pendingMs: 20 });
      const { sid, tid } = await sendWithWebhook(c, r);
      const types = async (n: number): Promise<unknown[]> => (await r.next(n)).map((b) => obj(JSON.parse(b.body)).type);
      expect(await types(1)).toEqual(['guardrail_trigger']);
      expect(obj((await c.poll(sid, tid)).json.data).value).toBe('Q1');
      await c.answer(sid, 'resume', 'a1');
      expect(await types(2)).toEqual(['guardrail_trigger', 'guardrail_trigger']);
      expect(obj((await c.poll(sid, tid)).json.data).value).toBe('Q2');
      await c.answer(sid, 'resume', 'a2');
      expect(await types(3)).toEqual(['guardrail_trigger', 'guardrail_trigger', 'task_completed']);
      expect(r.bells.map((b) => b.taskStatus)).toEqual(['guardrail', 'guardrail', 'completed']);
    });

    it('rings failed for a failed task and for one answered inline; never for a stopped, stuck or terminated task', async () => {
      const c = await emulator.start({ webhookPendingMs: 20 });
      const r = await receiver(200, c.emu);
      c.emu.enqueueTasks({ outcome: 'failed' }, { outcome: 'completed', inline: true }, { outcome: 'stuck' }, { outcome: 'completed', pendingMs: 250 }, { outcome: 'completed', pendingMs: 250 });
      const { sid, tid } = await sendWithWebhook(c, r);
      expect(obj(JSON.parse((await r.next(1))[0].body))).toMatchObject({ type: 'failed', taskId: tid });
      const inline = await c.newTask(sid, 'inline', webhook(r.url));
      expect(inline.json).toMatchObject({ result: { type: 'task_completed' } });
      expect(obj(JSON.parse((await r.next(2))[1].body))).toMatchObject({ type: 'task_completed', taskId: inline.json.taskId });

      await c.task(sid, 'stuck', webhook(r.url));
      await c.send(sid, { actionType: 'state', newState: 'stop' }); // stops the stuck one: no bell
      await c.task(sid, 'stopped', webhook(r.url));
      await c.send(sid, { actionType: 'state', newState: 'stop' });
      const other = await c.openSession();
      await c.task(other, 'terminated', webhook(r.url));
      await c.terminate(other);
      await sleep(350); // past the end of both
      await c.emu.doorbellsSettled();
      expect(r.bells).toHaveLength(2);
      expect(c.emu.ledger().doorbells.map((d) => d.type)).toEqual(['failed', 'task_completed']);
    });
  });

  describe('doorbell scripts', () => {
    it('drop: never rings (recorded as dropped); polling still finds the task completed', async () => {
      const c = await emulator.start({ webhookPendingMs: 20 });
      const r = await receiver(200, c.emu);
      c.emu.enqueueTasks({ outcome: 'completed', doorbell: { drop: true } });
      const { sid, tid } = await sendWithWebhook(c, r);
      await until(() => c.emu.ledger().doorbells.length === 1, 'the dropped bell');
      expect((await c.poll(sid, tid)).json.type).toBe('task_completed');
      await c.emu.doorbellsSettled();
      expect(r.bells).toHaveLength(0);
      expect(c.emu.ledger().doorbells).toEqual([{ kind: 'task', sessionId: sid, taskId: tid, type: 'task_completed', url: `${r.url}/hook/n0nce-1`, at: expect.any(Number), state: 'dropped' }]);
    });

    it('delayMs rings late, after the task ended; duplicate rings N times', async () => {
      const c = await emulator.start({ webhookPendingMs: 20 });
      const r = await receiver(200, c.emu);
      c.emu.enqueueTasks({ outcome: 'completed', doorbell: { delayMs: 200 } }, { outcome: 'completed', doorbell: { duplicate: 3 } });
      const first = await sendWithWebhook(c, r);
      const [late] = await r.next(1);
      expect(late.receivedAt - first.sentAt).toBeGreaterThanOrEqual(200);
      expect(late.taskStatus).toBe('completed');
      const second = await c.task(first.sid, 'dup', webhook(r.url));
      const bells = (await r.next(4)).slice(1);
      expect(bells.map((b) => obj(JSON.parse(b.body)).taskId)).toEqual([second, second, second]);
      await c.emu.doorbellsSettled();
      expect(c.emu.ledger().doorbells.map((d) => [d.taskId, d.state])).toEqual([
        [first.tid, 'answered'],
        [second, 'answered'],
        [second, 'answered'],
        [second, 'answered'],
      ]);
    });

    it('early: a bell with the right URL and auth arrives while the task is still pending, then the real one', async () => {
      const c = await emulator.start();
      const r = await receiver(200, c.emu);
      // Early bells well before each task's end: one delivered 200 ms late on a busy machine found its task completed.
      c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 1_000, doorbell: { early: true } }, { outcome: 'completed', pendingMs: 1_000, doorbell: { early: 10, drop: true } });
      const { sid, tid } = await sendWithWebhook(c, r);
      const [early, real] = await r.next(2);
      expect(early).toMatchObject({ authorization: `Bearer ${AUTH}`, path: '/hook/n0nce-1?sig=query-secret', taskStatus: 'pending' });
      expect(JSON.parse(early.body)).toEqual({ type: 'task_completed', sessionId: sid, taskId: tid });
      expect(real.taskStatus).toBe('completed');
      const second = await c.task(sid, 'early only', webhook(r.url));
      const [, , onlyEarly] = await r.next(3);
      expect(onlyEarly.taskStatus).toBe('pending');
      await until(() => c.emu.ledger().doorbells.length === 4, 'the dropped bell');
      await c.emu.doorbellsSettled();
      expect(r.bells).toHaveLength(3);
      expect(c.emu.ledger().doorbells.map((d) => `${d.kind} ${d.state}`)).toEqual(['early answered', 'task answered', 'early answered', 'task dropped']);
      expect(c.emu.ledger().doorbells[3].taskId).toBe(second);
    });

    it('the emulator option `doorbell` scripts every webhook task; a behaviour’s own script wins', async () => {
      const c = await emulator.start({ webhookPendingMs: 10, doorbell: { drop: true } });
      const r = await receiver(200, c.emu);
      c.emu.enqueueTasks({ outcome: 'completed' }, { outcome: 'completed', doorbell: {} });
      const { sid } = await sendWithWebhook(c, r);
      await until(() => c.emu.ledger().doorbells.length === 1, 'the dropped bell');
      const rung = await c.task(sid, 'rings', webhook(r.url));
      const [bell] = await r.next(1);
      expect(obj(JSON.parse(bell.body)).taskId).toBe(rung);
      await c.emu.doorbellsSettled();
      expect(c.emu.ledger().doorbells.map((d) => d.state)).toEqual(['dropped', 'answered']);
    });

    it('validates scripts', async () => {
      const c = await emulator.start();
      expect(() => c.emu.enqueueTasks({ outcome: 'completed', doorbell: { duplicate: 0 } })).toThrow(/duplicate/);
      expect(() => c.emu.enqueueTasks({ outcome: 'completed', doorbell: { early: 'soon' as never } })).toThrow(/early/);
      expect(() => c.emu.enqueueTasks({ outcome: 'completed', doorbell: { delayMs: -1 } })).toThrow(/delayMs/);
      expect((await c.call('POST', '/__emulator/tasks', { outcome: 'completed', doorbell: { drop: 'yes' } }, { auth: null })).status).toBe(400);
    });
  });

  describe('where doorbells may ring, and what is recorded', () => {
    it('refuses a non-loopback URL and records it; the task itself is accepted', async () => {
      const c = await emulator.start({ webhookPendingMs: 10 });
      const sid = await c.openSession();
      const tid = await c.task(sid, 'x', { webhook: { url: 'http://example.com/hook/abc?sig=1', auth: AUTH } });
      await until(() => c.emu.ledger().doorbells.length === 1, 'the refused bell');
      await c.emu.doorbellsSettled();
      expect(c.emu.ledger().doorbells).toEqual([
        { kind: 'task', sessionId: sid, taskId: tid, type: 'task_completed', url: 'http://example.com/hook/abc', at: expect.any(Number), state: 'refused', error: 'example.com is not a loopback host' },
      ]);
    });

    it('records a receiver error status as answered, and a closed port as an error', async () => {
      const c = await emulator.start({ webhookPendingMs: 10 });
      const failing = await receiver(500, c.emu);
      const gone = await receiver(200, c.emu);
      await gone.close();
      const sid = await c.openSession();
      await c.task(sid, 'a', webhook(failing.url));
      await failing.next(1);
      await c.emu.doorbellsSettled();
      await c.task(sid, 'b', webhook(gone.url));
      await until(() => c.emu.ledger().doorbells.length === 2, 'the second bell');
      await c.emu.doorbellsSettled();
      const [answered, error] = c.emu.ledger().doorbells;
      expect(answered).toMatchObject({ state: 'answered', status: 500 });
      expect(error).toMatchObject({ state: 'error', error: expect.stringContaining('ECONNREFUSED') });
      expect(failing.bells).toHaveLength(1); // no retries
    });

    it('reset cancels scheduled bells; doorbellsSettled resolves at once', async () => {
      const c = await emulator.start({ webhookPendingMs: 10 });
      const r = await receiver(200, c.emu);
      c.emu.enqueueTasks({ outcome: 'completed', doorbell: { delayMs: 5000 } });
      await sendWithWebhook(c, r);
      await until(() => c.emu.ledger().doorbells.length === 1, 'the scheduled bell');
      expect(c.emu.ledger().doorbells.map((d) => d.state)).toEqual(['scheduled']);
      c.emu.reset();
      const t0 = Date.now();
      await c.emu.doorbellsSettled();
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(c.emu.ledger().doorbells).toEqual([]);
    });

    it.each([
      ['127.0.0.1', true],
      ['127.8.9.10', true],
      ['localhost', true],
      ['LOCALHOST.', true],
      ['[::1]', true],
      ['[::ffff:7f00:1]', true],
      ['10.0.0.1', false],
      ['0.0.0.0', false],
      ['[::]', false],
      ['128.0.0.1', false],
      ['example.com', false],
      ['localhost.example.com', false],
      ['127.0.0.1.nip.io', false],
    ])('isLoopbackHost(%s) = %s', (host, expected) => {
      expect(isLoopbackHost(host)).toBe(expected);
    });
  });

  describe('forged doorbells', () => {
    it('ringDoorbell sends any body and headers to a loopback URL and records it without headers or query', async () => {
      const c = await emulator.start();
      const r = await receiver(202);
      const rec = await c.emu.ringDoorbell({
        url: `${r.url}/hook/wrong-nonce?token=forged-query`,
        body: { type: 'task_completed', sessionId: 's-1', taskId: 't-1' },
        headers: { authorization: 'Bearer forged-auth' },
      });
      expect(rec).toEqual({ kind: 'forged', sessionId: 's-1', taskId: 't-1', type: 'task_completed', url: `${r.url}/hook/wrong-nonce`, at: expect.any(Number), state: 'answered', status: 202 });
      expect(r.bells[0]).toMatchObject({ method: 'POST', path: '/hook/wrong-nonce?token=forged-query', authorization: 'Bearer forged-auth' });
      expect(JSON.parse(r.bells[0].body)).toEqual({ type: 'task_completed', sessionId: 's-1', taskId: 't-1' });

      const raw = await c.emu.ringDoorbell({ url: `${r.url}/hook/x`, method: 'PUT', body: 'not json' });
      expect(raw).toMatchObject({ kind: 'forged', state: 'answered', status: 202 });
      expect(r.bells[1]).toMatchObject({ method: 'PUT', body: 'not json' });
      expect(r.bells[1].authorization).toBeUndefined();

      const refused = await c.emu.ringDoorbell({ url: 'http://192.0.2.1/hook', body: {} });
      expect(refused).toMatchObject({ state: 'refused', error: '192.0.2.1 is not a loopback host' });
      const l = c.emu.ledger();
      expect(l.doorbells).toHaveLength(3);
      expect(JSON.stringify(l)).not.toContain('forged-auth');
      expect(JSON.stringify(l)).not.toContain('forged-query');
      await expect(c.emu.ringDoorbell({ url: '' })).rejects.toThrow(/url/);
    });

    it('POST /__emulator/doorbell forges one over HTTP', async () => {
      const c = await emulator.start();
      const r = await receiver(200);
      const res = await c.call('POST', '/__emulator/doorbell', { url: `${r.url}/hook/n`, body: { type: 'failed' }, headers: { authorization: 'raw-value' } }, { auth: null });
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ ok: true, doorbell: expect.objectContaining({ kind: 'forged', type: 'failed', state: 'answered', status: 200 }) });
      expect(r.bells[0].authorization).toBe('raw-value');
      expect((await c.call('POST', '/__emulator/doorbell', { body: {} }, { auth: null })).status).toBe(400);
      expect(str(c.emu.ledger().doorbells[0].url)).toBe(`${r.url}/hook/n`);
    });
  });
});
