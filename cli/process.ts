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
}

/**
 * Reads an execution input: a JSON file, or stdin for `-`. Throws an Error whose message names the file and the
 * problem; each command turns it into its own usage error.
 */
export async function readJsonInput(file: string, readStdin: () => Promise<string>): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Runs a command's `main` as the process: real stdio and environment, Ctrl-C turned into an abort signal (a second
 * Ctrl-C quits at once, exit 130), the exit code set from what `main` returns.
 */

export function runAsProcess(main: (io: CliIo) => Promise<number>, interruptNote: string): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const controller = new AbortController();
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\nwebrun-sfn: interrupted, ${interruptNote} (Ctrl-C again to quit now)\n`);
    controller.abort();
  });

  const readStdin = async () => {
    let text = '';
    for await (const chunk of process.stdin) text += chunk;
    return text;
  };

  main({
    argv: process.argv.slice(2),
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
