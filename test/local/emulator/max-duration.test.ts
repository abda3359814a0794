/**
 * A task's `maxDuration`: the real API runs a task at most that long (default and most 300000 ms, TASK_TIMEOUT),
 * so a task still running, or waiting at a guardrail question, when it passes ends failed, naming the timeout.
 */
import { describe, expect, it, vi } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { emulatorPerTest, sleep, str, until, type Client, type Res } from './harness';

const emulator = emulatorPerTest();

/** Polls every 100 ms until the task is no longer pending (the emulator's 2-3 s advice does not apply here). */
async function settled(c: Client, sid: string, tid: string): Promise<Res> {
  for (;;) {
    const r = await c.poll(sid, tid);
    if (r.json.pending !== true) return r;
    await sleep(100);
  }
}

describe.concurrent('maxDuration (tests run concurrently, each with its own emulator)', () => {
  it('a task still pending when its maxDuration passes fails with the timeout, not completing later', async () => {
    const c = await emulator.start({ pendingPolls: 0 });
    c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 4_000 });
    const sid = await c.openSession();
    const tid = await c.task(sid, 'Slow search', { maxDuration: 1_000 });
    const end = await settled(c, sid, tid);
    expect(end.json).toEqual({ success: true, sessionId: sid, taskId: tid, status: 'failed', error: 'Task timed out after 1000 ms (maxDuration)' });
    expect(c.emu.ledger().sessions[0].tasks[0]).toMatchObject({ status: 'failed' });
  });

  it('a held send-message answers the timeout inline when maxDuration passes within the hold', async () => {
    const c = await emulator.start({ sendHoldMs: 3_000 });
    c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 4_000 });
    const sid = await c.openSession();
    const r = await c.newTask(sid, 'Slow search', { maxDuration: 1_000 });
    expect(r.json).toMatchObject({ taskId: expect.any(String), status: 'failed', error: 'Task timed out after 1000 ms (maxDuration)' });
  });

  it('a task waiting at a guardrail question past its maxDuration fails; the late answer finds no task waiting', async () => {
    const c = await emulator.start({ pendingPolls: 0 });
    c.emu.enqueueTasks({ outcome: 'guardrail', inline: true, question: 'Confirm the purchase?' });
    const sid = await c.openSession();
    const sent = await c.newTask(sid, 'Buy it', { maxDuration: 1_000 });
    expect(sent.json).toMatchObject({ result: { type: 'guardrail_trigger' } });
    const tid = str(sent.json.taskId);
    await until(() => c.emu.ledger().sessions[0].tasks[0].status === 'failed', 'the question to time out');
    expect((await c.poll(sid, tid)).json).toMatchObject({ status: 'failed', error: 'Task timed out after 1000 ms (maxDuration)' });
    const late = await c.answer(sid, 'resume', 'yes');
    expect(late.status).toBe(400);
    // The timed-out task does not block the next one.
    expect((await c.newTask(sid, 'Next')).status).toBe(200);
  });

  it('a task that ended before its maxDuration keeps its outcome, however late it is polled', async () => {
    const c = await emulator.start({ pendingPolls: 0 });
    c.emu.enqueueTasks({ outcome: 'completed', pendingMs: 50 }, { outcome: 'failed', pendingMs: 50, reason: 'Out of stock' });
    // One session each, so both wait out their deadlines at once.
    const [first, second] = [await c.openSession(), await c.openSession()];
    const a = await c.task(first, 'Quick', { maxDuration: 1_000 });
    const b = await c.task(second, 'Quick too', { maxDuration: 1_000 });
    // Past both deadlines, neither task polled since it was sent.
    await sleep(1_100);
    expect((await c.poll(first, a)).json.type).toBe('task_completed');
    expect((await c.poll(second, b)).json).toMatchObject({ status: 'failed', error: 'Out of stock' });
  });

  it('without maxDuration a task times out at the default 300000 ms (a stuck task is pending only until then)', async () => {
    const c = await emulator.start({ sessionIdleMs: 2_000_000_000 });
    c.emu.enqueueTasks({ outcome: 'stuck' });
    const sid = await c.openSession();
    const tid = await c.task(sid, 'Never ends');
    const sentAt = c.emu.ledger().sessions[0].tasks[0].sentAt;
    // Only the in-process ledger is asked while the clock is moved: no request of another test runs with it.
    const clock = vi.spyOn(Date, 'now');
    try {
      clock.mockReturnValue(sentAt + 299_999);
      expect(c.emu.ledger().sessions[0].tasks[0].status).toBe('pending');
      clock.mockReturnValue(sentAt + 300_000);
      expect(c.emu.ledger().sessions[0].tasks[0].status).toBe('failed');
    } finally {
      clock.mockRestore();
    }
    expect((await c.poll(sid, tid)).json).toMatchObject({ status: 'failed', error: 'Task timed out after 300000 ms (maxDuration)' });
  });

  it('a webhook task that times out rings its doorbell with type "failed"', async () => {
    const server = createServer((req, res) => req.resume().on('end', () => res.writeHead(204).end()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const receiver = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    try {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'stuck' });
      const sid = await c.openSession();
      const tid = await c.task(sid, 'Hooked', { maxDuration: 1_000, webhook: { url: `${receiver.url}/hook/n1`, auth: 'a' } });
      await until(() => c.emu.ledger().doorbells.some((d) => d.state === 'answered'), 'the timeout doorbell');
      expect(c.emu.ledger().doorbells).toEqual([expect.objectContaining({ kind: 'task', taskId: tid, type: 'failed', state: 'answered' })]);
      expect((await c.poll(sid, tid)).json).toMatchObject({ status: 'failed', error: 'Task timed out after 1000 ms (maxDuration)' });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
