/** The ancestor watch that stops the emulator when its launcher is gone. */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ancestry, brokenLink, procfsReader, psReader, watchAncestors, type ProcInfo, type ProcReader } from '../../../local/emulator/parent-watch';
import { until } from './harness';

/** A process table the test edits. */
function table(entries: Record<number, ProcInfo>): { read: ProcReader; procs: Map<number, ProcInfo> } {
  const procs = new Map(Object.entries(entries).map(([pid, info]) => [Number(pid), info]));
  const read: ProcReader = (pids) => new Map(pids.flatMap((pid) => (procs.has(pid) ? [[pid, { ...(procs.get(pid) as ProcInfo) }] as const] : [])));
  return { read, procs };
}

const chainOf = (): ReturnType<typeof table> =>
  table({ 40: { ppid: 30, start: 'a' }, 30: { ppid: 20, start: 'b' }, 20: { ppid: 1, start: 'c' }, 1: { ppid: 0, start: 'init' } });

describe('ancestry and brokenLink', () => {
  it('records the chain up to, not including, pid 1', () => {
    const { read } = chainOf();
    expect(ancestry(40, read).map((a) => a.pid)).toEqual([40, 30, 20]);
  });

  it('is intact until an ancestor exits, is replaced, or is re-parented', () => {
    const { read, procs } = chainOf();
    const chain = ancestry(40, read);
    expect(brokenLink(chain, read)).toBeUndefined();
    procs.set(30, { ppid: 1, start: 'b' }); // its parent 20 died: re-parented to init
    expect(brokenLink(chain, read)).toBe('process 30 lost its parent 20');
    procs.set(30, { ppid: 20, start: 'b2' }); // pid reused
    expect(brokenLink(chain, read)).toBe('process 30 exited');
    procs.delete(30);
    expect(brokenLink(chain, read)).toBe('process 30 exited');
  });
});

describe('watchAncestors', () => {
  it('calls back once when the chain breaks', async () => {
    const { read, procs } = chainOf();
    const reasons: string[] = [];
    const w = watchAncestors((r) => reasons.push(r), { read, from: 40, intervalMs: 5 });
    await new Promise((r) => setTimeout(r, 30));
    expect(reasons).toEqual([]);
    procs.delete(20);
    await until(() => reasons.length > 0, 'the callback');
    await new Promise((r) => setTimeout(r, 30));
    expect(reasons).toEqual(['process 20 exited']);
    w.stop();
  });

  it('never fires on a reader that cannot tell', async () => {
    const { read } = chainOf();
    let fail = false;
    const flaky: ProcReader = (pids) => {
      if (fail) throw new Error('EACCES');
      return read(pids);
    };
    const reasons: string[] = [];
    const w = watchAncestors((r) => reasons.push(r), { read: flaky, from: 40, intervalMs: 5 });
    fail = true;
    await new Promise((r) => setTimeout(r, 40));
    expect(reasons).toEqual([]);
    w.stop();
  });
});

describe('process readers on this machine', () => {
  it.skipIf(!existsSync('/proc/self/stat'))('procfs: this process, its parent, and no such process', () => {
    const read = procfsReader();
    const got = read([process.pid, 2 ** 22 + 12345]);
    expect(got.get(process.pid)).toEqual({ ppid: process.ppid, start: expect.stringMatching(/^\d+$/) });
    expect(got.has(2 ** 22 + 12345)).toBe(false);
    expect(ancestry(process.pid, read)[1]?.pid).toBe(process.ppid);
  });

  it.skipIf(spawnSync('ps', ['-p', String(process.pid)]).status !== 0)('ps: agrees with the process table', () => {
    const got = psReader()([process.pid, 2 ** 22 + 12345]);
    expect(got.get(process.pid)).toEqual({ ppid: process.ppid, start: expect.any(String) });
    expect(got.has(2 ** 22 + 12345)).toBe(false);
  });
});
