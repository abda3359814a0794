/** Answer contents: running usage and cost, balance, results of a requested size. */
import { describe, expect, it } from 'vitest';
import { padToBytes } from '../../../local/emulator/answers';
import { emulatorPerTest, obj, sleep, str, type Res } from './harness';

const emulator = emulatorPerTest();
const costOf = (r: Res): number => Number(obj(r.json.usage).cost);
const bytesOf = (v: unknown): number => Buffer.byteLength(JSON.stringify(v));

describe.concurrent('answers (tests run concurrently, each with its own emulator)', () => {
  describe('usage and cost', () => {
    it('a pending task carries a running cost that grows with each pending answer and reaches `cost` at completion', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'completed', pendingPolls: 3, cost: 1.5 });
      const sid = await c.openSession();
      const sent = await c.newTask(sid, 'Find the price');
      const tid = str(sent.json.taskId);
      const costs = [costOf(sent)];
      for (let i = 0; i < 3; i++) {
        const p = await c.poll(sid, tid);
        expect(p.json.pending).toBe(true);
        costs.push(costOf(p));
        expect(c.emu.ledger().sessions[0].tasks[0].cost).toBe(costs[costs.length - 1]);
      }
      expect(costs[0]).toBe(0);
      for (let i = 1; i < costs.length; i++) expect(costs[i]).toBeGreaterThan(costs[i - 1]);
      expect(costs[3]).toBeLessThan(1.5);
      const done = await c.poll(sid, tid);
      expect(done.json.usage).toEqual({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number), cost: 1.5 });
      expect(c.emu.ledger().sessions[0].tasks[0].cost).toBe(1.5);
    });

    it('costPerSecond: the cost grows with the time pending, and the total is what it cost until it ended', async () => {
      const c = await emulator.start({ shape: 'status' });
      c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 300, costPerSecond: 2 });
      const sid = await c.openSession();
      const t0 = Date.now();
      const tid = str((await c.newTask(sid, 'x')).json.taskId);
      await sleep(80);
      const running = costOf(await c.poll(sid, tid));
      expect(running).toBeGreaterThanOrEqual(0.15); // ≥ 75 ms at $2/s
      expect(running).toBeLessThanOrEqual(((Date.now() - t0) / 1000) * 2);
      await sleep(250);
      const done = await c.poll(sid, tid);
      expect(done.json.status).toBe('complete');
      const total = costOf(done);
      expect(total).toBeGreaterThan(running);
      expect(total).toBeLessThanOrEqual(((Date.now() - t0) / 1000) * 2);
      await sleep(30);
      expect(costOf(await c.poll(sid, tid))).toBe(total); // frozen once ended
    });

    it('the cost does not grow while a task waits at a guardrail question', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'completed', questions: ['Q'], pendingMs: 30, costPerSecond: 10 });
      const sid = await c.openSession();
      const tid = await c.task(sid, 'x');
      await sleep(50);
      expect((await c.poll(sid, tid)).json.type).toBe('guardrail_trigger');
      const atQuestion = c.emu.ledger().sessions[0].tasks[0].cost;
      expect(atQuestion).toBeGreaterThan(0);
      await sleep(60);
      expect(c.emu.ledger().sessions[0].tasks[0].cost).toBe(atQuestion);
    });

    it('option taskCost sets the default total; a behaviour overrides it; a scripted cost shows in the inline answer', async () => {
      const c = await emulator.start({ pendingPolls: 0, taskCost: 0.25 });
      c.emu.enqueueTasks({ outcome: 'completed', inline: true }, { outcome: 'completed', inline: true, cost: 0.75 });
      const sid = await c.openSession();
      const a = await c.newTask(sid, 'a');
      expect(a.json).toMatchObject({ result: { type: 'task_completed' }, usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number), cost: 0.25 } });
      expect(costOf(await c.newTask(sid, 'b'))).toBe(0.75);
      expect(costOf(await c.poll(sid, await c.task(sid, 'c')))).toBe(0.25);
    });

    it('option costPerSecond is the default rate; a behaviour cost wins over it', async () => {
      const d = await emulator.start({ costPerSecond: 0 });
      d.emu.enqueueTasks({ outcome: 'completed', pendingMs: 20 }, { outcome: 'completed', pendingMs: 20, cost: 0.5 });
      const sid2 = await d.openSession();
      const t1 = await d.task(sid2, 'free');
      await sleep(30);
      expect(costOf(await d.poll(sid2, t1))).toBe(0);
      const t2 = await d.task(sid2, 'priced');
      await sleep(30);
      expect(costOf(await d.poll(sid2, t2))).toBe(0.5);
    });

    it('without a scripted cost the final cost is the token estimate, and the inline answer keeps the vendor shape', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'completed', inline: true });
      const sid = await c.openSession();
      const inline = await c.newTask(sid, 'Search for a keyboard');
      expect(Object.keys(inline.json).sort()).toEqual(['result', 'sessionId', 'success', 'taskId']);
      const done = await c.poll(sid, await c.task(sid, 'Search for a keyboard'));
      const usage = obj(done.json.usage);
      expect(usage.cost).toBeGreaterThan(0);
      expect(usage.cost).toBeLessThan(0.05);
      expect(usage.cost).toBe(Math.round((Number(usage.prompt_tokens) * 3 + Number(usage.completion_tokens) * 15)) / 1e6);
    });

    it('start-session answers the configured balance', async () => {
      const c = await emulator.start({ balance: 3.25 });
      expect((await c.startSession()).json.balance).toBe(3.25);
    });

    it('402 INSUFFICIENT_BALANCE on demand through a fault rule', async () => {
      const c = await emulator.start();
      c.emu.injectFault({ endpoint: 'start', code: 'INSUFFICIENT_BALANCE' });
      const r = await c.startSession();
      expect(r.status).toBe(402);
      expect(r.json).toMatchObject({ success: false, code: 'INSUFFICIENT_BALANCE' });
    });
  });

  describe('resultBytes', () => {
    it('pads the completed data to exactly that many bytes of JSON, at the poll URL and inline', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'completed', resultBytes: 200_000 }, { outcome: 'completed', resultBytes: 300_000, inline: true });
      const sid = await c.openSession();
      const data = obj((await c.poll(sid, await c.task(sid, 'Collect every review'))).json.data);
      expect(bytesOf(data)).toBe(200_000);
      expect(str(data.message)).toMatch(/^Done: Collect every review\. .*The page listed further results/);
      const inline = obj(obj((await c.newTask(sid, 'More')).json.result).data);
      expect(bytesOf(inline)).toBe(300_000);
    });

    it('structured results still parse; the status shape and scripted data are padded too', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks(
        { outcome: 'completed', resultBytes: 50_000 },
        { outcome: 'completed', resultBytes: 40_000, shape: 'status' },
        { outcome: 'completed', resultBytes: 30_000, data: { items: ['ä', 'ö'] } },
      );
      const sid = await c.openSession();
      const schema = { type: 'object', properties: { title: { type: 'string' } } };
      const json = obj((await c.poll(sid, await c.task(sid, 'x', { outputType: 'structured_json', outputSchema: schema }))).json.data);
      expect(bytesOf(json)).toBe(50_000);
      expect(JSON.parse(str(json.message))).toEqual(json.output);
      const status = obj(obj((await c.poll(sid, await c.task(sid, 'y'))).json.result).data);
      expect(bytesOf(status)).toBe(40_000);
      expect(status).toMatchObject({ inputTokens: expect.any(Number), outputTokens: expect.any(Number) });
      const scripted = obj((await c.poll(sid, await c.task(sid, 'z'))).json.data);
      expect(bytesOf(scripted)).toBe(30_000);
      expect(scripted.items).toEqual(['ä', 'ö']);
    });

    it('leaves data that is already larger alone', () => {
      const data = { message: 'a long enough message' };
      expect(padToBytes(data, 10, undefined)).toBe(data);
      expect(bytesOf(padToBytes({ message: 'naïve – ok' }, 500, 'text'))).toBe(500);
      expect(bytesOf(padToBytes({ message: { nested: true } }, 100, 'text'))).toBe(100);
    });
  });
});
