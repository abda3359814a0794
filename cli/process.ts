/**
 * What both commands (bin/local.ts and bin/cli.ts) share with the process: reading the input file, and running
 * `main` with real stdio.
 */
import { readFile } from 'node:fs/promises';

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

/**
 * Runs a command's `main` as the process: real stdio and environment, SIGINT, SIGTERM and SIGHUP turned into an
 * abort signal (a second signal quits at once with 128 + its number), the same when the parent process goes away
 * (a killed `npm start`), and the exit code set from what `main` returns.
 */
export function runAsProcess(main: (io: CliIo) => Promise<number>, interruptNote: string): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const controller = new AbortController();
  // A closed terminal makes writes fail (EIO, EPIPE): the run must still end its session.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const stop = (why: string, exitCode: number) => {
    if (controller.signal.aborted) process.exit(exitCode);
    process.stderr.write(`\nwebrun-sfn: ${why}, ${interruptNote} (send it again to quit now)\n`);
    controller.abort();
  };
  for (const [signal, exitCode] of Object.entries(STOP_SIGNALS)) process.on(signal, () => stop(`interrupted (${signal})`, exitCode));
  // Reparented: whatever started this process (npm, a shell) is gone and no signal may come.
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent) stop('the parent process has gone', STOP_SIGNALS.SIGHUP);
  }, 1_000);
  watch.unref();

  const readStdin = () => readStream(process.stdin, controller.signal);

  const ask = process.stdin.isTTY && process.stderr.isTTY
    ? (prompt: string, cancel: Promise<void>) =>
        askOnTerminal(prompt, cancel, { input: process.stdin, output: process.stderr, onInterrupt: () => stop('interrupted (SIGINT)', STOP_SIGNALS.SIGINT) })
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
      process.exitCode = code;
    },
    (err: unknown) => {
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

