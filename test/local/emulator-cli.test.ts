/** bin/emulator.ts: its flags (in-process), and as users run it (child processes on 127.0.0.1). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLAG_NAMES, parseArgs, USAGE } from '../../bin/emulator';
import { nodeArgsOf } from '../../bin/npm-scripts';
import { startProcess, stderrMatch, type Running } from '../helpers/child-process';
import { KEY, obj, sleep, str } from './emulator/harness';

const ROOT = path.resolve(__dirname, '../..');

const spawnChild = (command: string, args: string[]): Running => startProcess(command, args, { cwd: ROOT });

const run = (args: string[]): Running => spawnChild(process.execPath, [...nodeArgsOf('emulator'), ...args]);

/** The URL the emulator prints on stderr. */
const urlOf = async (p: Running): Promise<string> => (await stderrMatch(p, /http:\/\/127\.0\.0\.1:\d+/))[0];

async function getJson(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  return obj(await (await fetch(url, init)).json());
}

async function serving(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

/** Every process below `pid` (Linux /proc; empty elsewhere), to clean up what a test started. */
function descendants(pid: number): number[] {
  if (!existsSync('/proc/self/stat')) return [];
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() ?? 0) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Running (a zombie nobody reaped yet counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

describe('parseArgs', () => {
  it('maps every flag onto EmulatorOptions', () => {
    expect(
      parseArgs([
        '--port', '8787', '--api-key', 'k', '--pending-polls', '3', '--shape', 'status', '--session-idle-ms', '1000', '--send-hold-ms=50',
        '--max-sessions', '4', '--balance', '0.5', '--task-cost', '1.25', '--cost-per-second', '0.01', '--webhook-pending-ms', '30',
        '--doorbell-delay-ms', '100', '--doorbell-duplicate', '2', '--doorbell-drop', '--doorbell-early', '--no-parent-watch', '--quiet',
      ]),
    ).toEqual({
      port: 8787, apiKey: 'k', pendingPolls: 3, shape: 'status', sessionIdleMs: 1000, sendHoldMs: 50, maxSessions: 4, balance: 0.5,
      taskCost: 1.25, costPerSecond: 0.01, webhookPendingMs: 30, doorbell: { delayMs: 100, duplicate: 2, drop: true, early: true },
      parentWatch: false, quiet: true, help: false,
    });
    expect(parseArgs([], {})).toEqual({ quiet: false, help: false, parentWatch: true });
    // The key from the environment, out of ps and npm's echo of the command; a flag wins.
    expect(parseArgs([], { WEBRUN_EMULATOR_API_KEY: 'env-key' }).apiKey).toBe('env-key');
    expect(parseArgs(['--api-key', 'flag-key'], { WEBRUN_EMULATOR_API_KEY: 'env-key' }).apiKey).toBe('flag-key');
    expect(parseArgs(['-h']).help).toBe(true);
  });

  it.each([
    [['--prot', '80'], 'unknown flag: --prot'],
    [['--port'], '--port needs a value'],
    [['--port', '--quiet'], '--port needs a value'],
    [['--port', '70000'], '--port must be an integer from 0 to 65535'],
    [['--pending-polls', 'many'], '--pending-polls must be an integer'],
    [['--shape', 'round'], '--shape must be documented or status'],
    [['--max-sessions', '0'], '--max-sessions must be an integer from 1'],
    [['--balance', 'lots'], '--balance must be a non-negative number'],
    [['--cost-per-second', '-1'], '--cost-per-second needs a value'],
    [['--doorbell-duplicate', '0'], '--doorbell-duplicate must be an integer from 1'],
    [['--quiet=yes'], '--quiet takes no value'],
    [['--api-key='], '--api-key must not be empty'],
    [['8787'], 'unexpected argument: 8787'],
  ])('%j → %s', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message);
  });

  it('--help names every flag and every control endpoint', () => {
    for (const flag of FLAG_NAMES) expect(USAGE).toContain(flag);
    for (const endpoint of ['/__emulator/ledger', '/__emulator/tasks', '/__emulator/faults', '/__emulator/doorbell', '/__emulator/reset']) {
      expect(USAGE).toContain(endpoint);
    }
  });
});

describe.concurrent('the emulator process', () => {
  // Which flags and values are refused, with which message, is parseArgs' (above); this is how the process ends.
  it('a bad flag exits 2 naming the flag; --help exits 0 with the usage on stdout', async () => {
    const a = run(['--prot', '80']);
    const h = run(['--help']);
    expect(await a.done).toBe(2);
    expect(a.stderr()).toContain('--prot');
    expect(await h.done).toBe(0);
    expect(h.stdout()).toBe(`${USAGE}\n`);
  });

  it('serves on 127.0.0.1, prints the URL on stderr, honours --pending-polls and --max-sessions, stops on SIGTERM', async () => {
    const p = run(['--port', '0', '--pending-polls', '0', '--max-sessions', '1', '--api-key', KEY]);
    try {
      const url = await urlOf(p);
      const h = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
      const s = await getJson(`${url}/start/start-session`, { method: 'POST', headers: h, body: '{"mode":"default"}' });
      const message = { actionType: 'newTask', newState: 'start', taskDetails: 'cli task' };
      const t = await getJson(`${url}/start/send-message`, { method: 'POST', headers: h, body: JSON.stringify({ sessionId: s.sessionId, message }) });
      const r = await getJson(`${url}/task/${str(s.sessionId)}/${str(t.taskId)}`, { headers: h });
      expect(r.type).toBe('task_completed');
      const refused = await getJson(`${url}/start/start-session`, { method: 'POST', headers: h, body: '{}' });
      expect(refused.code).toBe('SESSION_LIMIT_REACHED');
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.done).toBe(0);
    expect(p.stderr()).toContain('SIGTERM, stopping');
    expect(p.stderr()).not.toContain(KEY);
  });

  it.each(['SIGINT', 'SIGHUP'] as const)('stops cleanly on %s', async (signal) => {
    const p = run(['--quiet']);
    const url = await urlOf(p);
    p.child.kill(signal);
    expect(await p.done).toBe(0);
    expect(p.stderr()).toContain(`${signal}, stopping`);
    expect(await serving(url)).toBe(false);
  });

  // `npm run emulator -- --port 8787 &` then `kill %1`: SIGTERM reaches npm only, and npm's children outlive it.
  it('stops when the npm process that started it is killed', async () => {
    const npm = spawnChild('npm', ['run', 'emulator', '--', '--port', '0', '--quiet']);
    const npmPid = npm.child.pid ?? 0;
    let below: number[] = [];
    try {
      const url = await urlOf(npm);
      below = descendants(npmPid);
      expect(await serving(url)).toBe(true);
      npm.child.kill('SIGTERM');
      await npm.exit;
      const deadline = Date.now() + 10_000;
      while ((await serving(url)) && Date.now() < deadline) await sleep(100);
      expect(await serving(url)).toBe(false);
      while (below.some(alive) && Date.now() < deadline) await sleep(100);
      expect(below.filter(alive)).toEqual([]);
    } finally {
      killAll(below);
    }
  });

  // A launcher killed with SIGKILL cannot pass anything on; its child notices it is gone, unless told not to.
  it.each([
    [[], false],
    [['--no-parent-watch'], true],
  ])('when its parent is killed, with flags %j, it keeps serving: %s', async (flags, keepsServing) => {
    const script = `require('child_process').spawn(process.execPath, [...${JSON.stringify(nodeArgsOf('emulator'))}, '--quiet', ...${JSON.stringify(flags)}], { stdio: 'inherit' }); setInterval(() => {}, 1000);`;
    const launcher = spawnChild(process.execPath, ['-e', script]);
    let below: number[] = [];
    try {
      const url = await urlOf(launcher);
      below = descendants(launcher.child.pid ?? 0);
      launcher.child.kill('SIGKILL');
      await launcher.exit;
      const deadline = Date.now() + (keepsServing ? 1500 : 10_000); // three watch intervals, or generous
      while ((await serving(url)) && Date.now() < deadline) await sleep(100);
      expect(await serving(url)).toBe(keepsServing);
    } finally {
      killAll(below);
    }
  });
});
