/** A command run as a child process to its end, without blocking the test worker (so several can run at once). */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

/**
 * The node arguments of an npm script that runs `node <flags> <file>` (start, emulator), so that a test runs exactly
 * what `npm start` runs, without npm's own start-up: `spawn(process.execPath, [...scriptArgs('start'), ...args])`.
 */
export function scriptArgs(script: 'start' | 'emulator'): string[] {
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const [command, ...args] = scripts[script].split(' ');
  if (command !== 'node') throw new Error(`npm run ${script} is not a node command: ${scripts[script]}`);
  return args;
}

export interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runProcess(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
