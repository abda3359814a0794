/**
 * What both commands (bin/local.ts and bin/cli.ts) share with the process: reading the input file, and running
 * `main` with real stdio.
 */
import { readFile } from 'node:fs/promises';
import { watchAncestors, type WatchOptions } from '../local/emulator/parent-watch';

/** What a command's `main` gets of the process: arguments, environment, output streams, stdin and an abort signal. */
export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
  /** Asks a person on the terminal and resolves with the line they typed; absent when there is no terminal. */
  ask?: (prompt: string, cancel: Promise<void>) => Promise<string | undefined>;
}

/** The text without a leading byte-order mark (Windows editors write one): it is not part of the JSON. */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * The text of a file, or of stdin for `-`. Throws an Error whose message names the file and the problem: it cannot
 * be read, or it is not UTF-8 (read as UTF-8 anyway, each byte that is not would become "�" in what is sent).
 */
export async function readText(file: string, readStdin: () => Promise<string>): Promise<string> {
  let bytes: Uint8Array;
  try {
    if (file === '-') return await readStdin();
    bytes = await readFile(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${file} is not UTF-8 text: save it as UTF-8`);
  }
}

/**
 * Reads an execution input: a JSON file, or stdin for `-`. Throws an Error whose message names the file and the
 * problem; each command turns it into its own usage error.
 */
export async function readJsonInput(file: string, readStdin: () => Promise<string>): Promise<unknown> {
  const text = await readText(file, readStdin);
  try {
    return JSON.parse(withoutBom(text));
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The signals that stop a command: Ctrl-C, `kill`/`timeout`/CI cancellation, and a closed terminal. */
const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
export type StopSignal = keyof typeof STOP_SIGNALS;

/**
 * How long after the parent is seen gone a signal is taken as part of the same event (a closed terminal, `kill` of
 * the whole `npm start` group), not as the person's "quit now": the signal and the parent's death race.
 */
const AFTER_PARENT_GONE_MS = 1_000;

/** How often the processes that started this one are checked. */
const PARENT_WATCH_MS = 1_000;

export interface StopOptions {
  /** Stops the run (aborts the signal `main` got). Called once. */
  abort: () => void;
  /** Quits the process at once with this exit code (the person insisted). */
  quit: (exitCode: number) => void;
  /** A line for the person (stderr). */
  write: (text: string) => void;
  /** What a stop does, as the person is told ("terminating the session"). */
  note: string;
  /** Calls `onGone` when a process that started this one goes away (a killed `npm start`, a closed terminal). @default watchLaunchers */
  watchParent?: (onGone: (reason: string) => void) => { stop(): void };
  /** @default Date.now */
  now?: () => number;
}

export interface StopControl {
  /** A stop signal arrived (or Ctrl-C at a terminal question). */
  signal(name: StopSignal): void;
  /** The command has ended: stop watching the parent. */
  close(): void;
}

/**
 * What stops a command, and what quits it at once. The first signal, or the parent going away, stops the run (its
 * cleanup runs, the summary is printed); a second signal from the person quits at once with 128 + its number. Only
 * a person's repeat counts: a closed terminal sends SIGHUP to the whole group, an interactive shell resends it to
 * its jobs and then exits (so the parent goes too); `kill` of the `npm start` group ends npm as well. Counting those
 * as a second signal quit the run mid-cleanup, leaving the session open and the results unprinted. So SIGHUP never
 * quits, the parent going away never counts, and neither does a signal within a second after it.
 */
export function stopControl(options: StopOptions): StopControl {
  const now = options.now ?? Date.now;
  let stopping = false;
  /** Signals the person sent (not SIGHUP, not part of the parent going away). */
  let sent = 0;
  let parentGoneAt: number | undefined;
  const begin = (why: string, hint: string) => {
    options.write(`\nwebrun-sfn: ${why}, ${stopping ? 'still ' : ''}${options.note}${hint}\n`);
    if (stopping) return;
    stopping = true;
    options.abort();
  };
  const watch = (options.watchParent ?? watchLaunchers)((reason) => {
    if (parentGoneAt !== undefined) return;
    parentGoneAt = now();
    if (!stopping) begin(`the parent process has gone (${reason})`, ' (press Ctrl-C twice to quit now)');
  });
  return {
    signal(name) {
      const hangup = name === 'SIGHUP' || (parentGoneAt !== undefined && now() - parentGoneAt < AFTER_PARENT_GONE_MS);
      if (hangup) {
        if (!stopping) begin(`interrupted (${name})`, ' (press Ctrl-C twice to quit now)');
        return;
      }
      if (sent++ > 0) {
        options.quit(STOP_SIGNALS[name]);
        return;
      }
      begin(`interrupted (${name})`, ' (send it again to quit now)');
    },
    close: () => watch.stop(),
  };
}

/**
 * Notices the processes that started this one going away, once. Not only the direct parent: `npm start` runs the
 * command under `sh -c`, which outlives a SIGKILLed npm, so watching `sh` alone missed a killed `npm start`. The
 * whole chain of ancestors is watched, as the emulator's (local/emulator/parent-watch.ts).
 */
export function watchLaunchers(onGone: (reason: string) => void, options: WatchOptions = {}): { stop(): void } {
  return watchAncestors(onGone, { intervalMs: PARENT_WATCH_MS, ...options });
}

/**
 * Runs a command's `main` as the process: real stdio and environment, SIGINT, SIGTERM and SIGHUP turned into an
 * abort signal, the same when the parent process goes away (a killed `npm start`), a second Ctrl-C or SIGTERM
 * quitting at once (stopControl), and the exit code set from what `main` returns.
 */
export function runAsProcess(main: (io: CliIo) => Promise<number>, interruptNote: string): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const controller = new AbortController();
  // A closed terminal makes writes fail (EIO, EPIPE): the run must still end its session.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const stops = stopControl({
    abort: () => controller.abort(),
    quit: (exitCode) => process.exit(exitCode),
    write: (text) => process.stderr.write(text),
    note: interruptNote,
  });
  for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) process.on(signal, () => stops.signal(signal));

  const readStdin = () => readStream(process.stdin, controller.signal);

  const ask = process.stdin.isTTY && process.stderr.isTTY
    ? (prompt: string, cancel: Promise<void>) =>
        askOnTerminal(prompt, cancel, { input: process.stdin, output: process.stderr, onInterrupt: () => stops.signal('SIGINT') })
    : undefined;

  main({
    argv: process.argv.slice(2),
    ask,
    env: process.env,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readStdin,
    signal: controller.signal,
  }).then(
    (code) => {
      stops.close();
      process.exitCode = code;
    },
    (err: unknown) => {
      stops.close();
      process.stderr.write(`webrun-sfn: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

/**
 * Asks a person on a terminal and resolves with the line they typed, or undefined once `cancel` settles (the question
 * timed out, the run ended). The terminal reads keys itself while it asks, so Ctrl-C reaches the question rather than
 * the process as SIGINT: it is handed to `onInterrupt`, which stops the run as the signal would.
 */
export async function askOnTerminal(
  prompt: string,
  cancel: Promise<void>,
  terminal: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; onInterrupt: () => void },
): Promise<string | undefined> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: terminal.input, output: terminal.output, terminal: true });
  const gone = new AbortController();
  void cancel.then(() => gone.abort(), () => gone.abort());
  rl.on('SIGINT', () => {
    gone.abort();
    terminal.onInterrupt();
  });
  try {
    return await rl.question(prompt, { signal: gone.signal });
  } catch {
    return undefined;
  } finally {
    rl.close();
  }
}

/**
 * All of a stream's text (stdin, for an input given as `-`). A stop (Ctrl-C) ends the read at once, with an error,
 * rather than waiting for a writer that may never finish: nothing has started yet, and nothing will.
 */
export async function readStream(stream: NodeJS.ReadableStream & { destroy(error?: Error): void }, signal?: AbortSignal): Promise<string> {
  const interrupted = () => stream.destroy(new Error('interrupted before the input was read; nothing was started'));
  if (signal?.aborted) interrupted();
  signal?.addEventListener('abort', interrupted, { once: true });
  try {
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
    return text + decoder.decode();
  } finally {
    signal?.removeEventListener('abort', interrupted);
  }
}

