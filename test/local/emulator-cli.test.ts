/** bin/emulator.ts as users run it: a child process on 127.0.0.1. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEY, obj, str } from './emulator/harness';

const ROOT = path.resolve(__dirname, '../..');

interface Child {
  child: ChildProcess;
  stderr(): string;
  exit: Promise<number | null>;
}

function run(args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/emulator.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => err, exit };
}

/** The URL the emulator prints on stderr. */
function urlOf(p: Child): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed: ${p.stderr()}`)), 15_000);
    const check = (): void => {
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(p.stderr());
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    };
    p.child.stderr?.on('data', check);
    check();
  });
}

async function getJson(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  return obj(await (await fetch(url, init)).json());
}

describe('CLI (bin/emulator.ts)', () => {
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
    try {
      const url = await urlOf(p);
      const h = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
      const s = await getJson(`${url}/start/start-session`, { method: 'POST', headers: h, body: '{"mode":"default"}' });
      const message = { actionType: 'newTask', newState: 'start', taskDetails: 'cli task' };
      const t = await getJson(`${url}/start/send-message`, { method: 'POST', headers: h, body: JSON.stringify({ sessionId: s.sessionId, message }) });
      const r = await getJson(`${url}/task/${str(s.sessionId)}/${str(t.taskId)}`, { headers: h });
      expect(r.type).toBe('task_completed');
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exit).toBe(0);
    expect(p.stderr()).not.toContain(KEY);
  });
});
