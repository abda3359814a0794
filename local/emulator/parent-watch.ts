/**
 * Notices when the processes that started this one go away, so `npm run emulator &` followed by `kill %1` (SIGTERM
 * to npm only) does not leave the emulator listening. npm, its `sh -c` and the tsx wrapper sit between the user and
 * the emulator: npm's SIGTERM ends npm and sh, while tsx is re-parented and keeps the emulator alive. So the whole
 * chain of ancestors (up to, not including, pid 1) is recorded at start and checked periodically: an ancestor that
 * exited, was replaced (a reused pid has another start time) or lost its own parent means the launcher is gone.
 *
 * Linux reads /proc/<pid>/stat; elsewhere one `ps` call per check. If neither works the watch does nothing rather
 * than guess.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  ppid: number;
  /** Anything that changes when a pid is reused (start time). */
  start: string;
}

/** Reads the given processes; a pid missing from the map has exited. Throws when it cannot tell. */
export type ProcReader = (pids: readonly number[]) => Map<number, ProcInfo>;

export function procfsReader(root = '/proc'): ProcReader {
  return (pids) => {
    const out = new Map<number, ProcInfo>();
    for (const pid of pids) {
      let stat: string;
      try {
        stat = readFileSync(`${root}/${pid}/stat`, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH') continue;
        throw e;
      }
      // "pid (comm) state ppid ... starttime(22nd) ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, { ppid: Number(fields[1]), start: fields[19] ?? '' });
    }
    return out;
  };
}

export function psReader(): ProcReader {
  return (pids) => {
    const out = new Map<number, ProcInfo>();
    if (pids.length === 0) return out;
    const r = spawnSync('ps', ['-o', 'pid=,ppid=,lstart=', '-p', pids.join(',')], { encoding: 'utf8', timeout: 5000 });
    if (r.error) throw r.error;
    for (const line of r.stdout.split('\n')) {
      const m = /^\s*(\d+)\s+(\d+)\s+(.+?)\s*$/.exec(line);
      if (m) out.set(Number(m[1]), { ppid: Number(m[2]), start: m[3] });
    }
    if (out.size === 0 && r.status !== 0 && r.status !== 1) throw new Error(`ps exited with ${r.status}`);
    return out;
  };
}

export function defaultReader(): ProcReader {
  return existsSync('/proc/self/stat') ? procfsReader() : psReader();
}

export interface Ancestor extends ProcInfo {
  pid: number;
}

/** `from` and its ancestors, nearest first, up to (not including) pid 1. */
export function ancestry(from: number, read: ProcReader, maxDepth = 64): Ancestor[] {
  const chain: Ancestor[] = [];
  let pid = from;
  while (pid > 1 && chain.length < maxDepth) {
    const info = read([pid]).get(pid);
    if (!info) break;
    chain.push({ pid, ...info });
    pid = info.ppid;
  }
  return chain;
}

/** Why the chain is broken, or undefined while it is intact. */
export function brokenLink(chain: readonly Ancestor[], read: ProcReader): string | undefined {
  const now = read(chain.map((a) => a.pid));
  for (const a of chain) {
    const info = now.get(a.pid);
    if (!info || info.start !== a.start) return `process ${a.pid} exited`;
    if (info.ppid !== a.ppid) return `process ${a.pid} lost its parent ${a.ppid}`;
  }
  return undefined;
}

export interface WatchOptions {
  /** @default 500 */
  intervalMs?: number;
  /** @default defaultReader() */
  read?: ProcReader;
  /** The first process to watch. @default process.ppid */
  from?: number;
}

/** Calls `onGone` once when the chain of ancestors breaks. The timer does not keep the process alive. */
export function watchAncestors(onGone: (reason: string) => void, options: WatchOptions = {}): { stop(): void } {
  const read = options.read ?? defaultReader();
  let chain: Ancestor[];
  try {
    chain = ancestry(options.from ?? process.ppid, read);
  } catch {
    chain = [];
  }
  if (chain.length === 0) return { stop() {} };
  const timer = setInterval(() => {
    let reason: string | undefined;
    try {
      reason = brokenLink(chain, read);
    } catch {
      return; // cannot tell this time: never exit on a guess
    }
    if (reason === undefined) return;
    clearInterval(timer);
    onGone(reason);
  }, options.intervalMs ?? 500);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
