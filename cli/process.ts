/**
 * Runs a command's `main` as the process: real stdio and environment, Ctrl-C turned into an abort signal (a second
 * Ctrl-C quits at once, exit 130), the exit code set from what `main` returns. Shared by bin/local.ts and bin/cli.ts.
 */
import type { CliIo } from '../local/cli';

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
