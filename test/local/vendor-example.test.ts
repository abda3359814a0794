import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../local/emulator';
import { runProcess } from '../helpers/child-process';

/**
 * The vendor's own example client (test/fixtures/vendor-example.js, copied from multi-task-workflows.txt with only
 * API_KEY/BASE read from the environment) must run to completion against the emulator's documented shapes: it
 * only polls when the send answer has `pending: true`, and it stops polling on a top-level `type: "task_completed"`.
 */
const ROOT = path.resolve(__dirname, '../..');
const KEY = 'vendor-example-key-41c2';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

function runExample(env: Record<string, string>) {
  return runProcess(process.execPath, ['--require', './test/fixtures/fast-timers.cjs', 'test/fixtures/vendor-example.js'], {
    cwd: ROOT, env: { ...process.env, ...env }, timeoutMs: 20_000,
  });
}

it('the vendor example client runs to completion: 2 polled tasks, session terminated once', async () => {
  // One pending answer per task exercises the example's poll loop (its fixed 2 s interval, 20 ms here: fast-timers.cjs).
  emu = await startEmulator({ apiKey: KEY, pendingPolls: 1 });
  const r = await runExample({ WEBRUN_API_KEY: KEY, WEBRUN_BASE_URL: emu.url });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);

  const l = emu.ledger();
  const sid = l.sessions[0]?.sessionId;
  expect(r.stdout).toContain(`Session created: ${sid}`);
  // The poll loop returned on the top-level `type: "task_completed"` (not on a shape it merely fell through).
  expect(r.stdout).toMatch(/Task 1 result: \{\s+type: 'task_completed'/);
  expect(r.stdout).toMatch(/Task 2 result: \{\s+type: 'task_completed'/);
  expect(r.stdout.trim().split('\n').pop()).toBe('Session terminated');

  expect(l).toMatchObject({ created: 1, terminated: 1, open: 0, expired: 0 });
  expect(l.sessions[0]).toMatchObject({ terminateCalls: 1, terminateRequests: 1, terminatedBy: 'request' });
  expect(l.sessions[0].tasks.map((t) => [t.taskDetails, t.status, t.polls])).toEqual([
    ["Search for 'wireless keyboard'", 'completed', 2],
    ['Add the first result to cart', 'completed', 2],
  ]);
  expect(l.requests.every((q) => q.authorization === 'valid' && q.status === 200)).toBe(true);
}, 25_000);

it('the vendor example surfaces a guardrail at the poll URL (exit 1 from its thrown error)', async () => {
  emu = await startEmulator({ apiKey: KEY, pendingPolls: 0 });
  emu.enqueueTasks({ outcome: 'guardrail' });
  const r = await runExample({ WEBRUN_API_KEY: KEY, WEBRUN_BASE_URL: emu.url });
  expect(r.status).toBe(1);
  expect(r.stderr).toContain('Guardrail: I need login credentials');
  // The example has no cleanup path: the session it created stays open (what our workflow must never do).
  expect(emu.ledger()).toMatchObject({ created: 1, terminated: 0, open: 1 });
});
