/** Commands run as child processes, without blocking the test worker (so several can run at once). */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A child process while it runs: what it has printed so far, and its end. */
export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Its exit code, once it exits (its output may still be arriving, or held open by a process it started). */
  exit: Promise<number | null>;
  /** Its exit code, once it exited and all of its output was read. */
  done: Promise<number | null>;
}

export function startProcess(command: string, args: string[], options: ProcessOptions & { timeoutMs?: number } = {}): Running {
  const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exit, done };
}

/** The first match of `pattern` in what the process prints on stderr; fails after `timeoutMs` without one. */
export function stderrMatch(p: Running, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never printed ${pattern}: ${p.stderr()}`)), timeoutMs);
    const check = (): void => {
      const m = pattern.exec(p.stderr());
      if (!m) return;
      clearTimeout(timer);
      p.child.stderr?.off('data', check);
      resolve(m);
    };
    p.child.stderr?.on('data', check);
    check();
  });
}

export interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`, 60 s by default). */
export async function runProcess(command: string, args: string[], options: ProcessOptions & { timeoutMs?: number } = {}): Promise<Finished> {
  const p = startProcess(command, args, { ...options, timeoutMs: options.timeoutMs ?? 60_000 });
  const status = await p.done;
  return { status, stdout: p.stdout(), stderr: p.stderr() };
}
