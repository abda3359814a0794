/**
 * Runs the webrun API emulator on 127.0.0.1.
 *
 *   npm run emulator -- --port 8787 [--api-key K] [--pending-polls N] [--shape documented|status]
 *                       [--session-idle-ms MS] [--send-hold-ms MS] [--quiet]
 *
 * Prints the URL on stderr, logs one line per request (never headers or bodies) unless --quiet, and stops cleanly
 * on SIGINT/SIGTERM. Bad flags: a message naming the flag, exit 2.
 */
import { startEmulator, type EmulatorOptions, type ResponseShape } from '../local/emulator';

const USAGE = `usage: npm run emulator -- [--port N] [--api-key K] [--pending-polls N] [--shape documented|status]
                            [--session-idle-ms MS] [--send-hold-ms MS] [--quiet]
  --port N             port on 127.0.0.1 (default 0: a free port, printed)
  --api-key K          accept only "Bearer K" (default: any non-empty Bearer token)
  --pending-polls N    GET /task answers pending N times before the outcome (default 2)
  --shape S            answer shape: documented (default) or status
  --session-idle-ms MS inactivity expiry of a session (default 300000)
  --send-hold-ms MS    how long send-message holds an unfinished task (default 0)
  --quiet              no request log
Control endpoints: GET /__emulator/ledger, POST /__emulator/tasks, POST /__emulator/faults, POST /__emulator/reset`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CliOptions extends EmulatorOptions {
  quiet: boolean;
  help: boolean;
}

function intFlag(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

export function parseArgs(argv: string[]): CliOptions {
  const out: CliOptions = { quiet: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quiet') {
      out.quiet = true;
      continue;
    }
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const takesValue = ['--port', '--api-key', '--pending-polls', '--shape', '--session-idle-ms', '--send-hold-ms'];
    if (!takesValue.includes(flag)) throw new UsageError(`unknown flag: ${flag}`);
    let value: string | undefined;
    if (eq > 0 && arg.startsWith('--')) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      i++;
    }
    switch (flag) {
      case '--port':
        out.port = intFlag(flag, value, 0, 65535);
        break;
      case '--api-key':
        if (value === '') throw new UsageError('--api-key must not be empty');
        out.apiKey = value;
        break;
      case '--pending-polls':
        out.pendingPolls = intFlag(flag, value, 0, 1_000_000);
        break;
      case '--shape':
        if (value !== 'documented' && value !== 'status') throw new UsageError(`--shape must be documented or status, got "${value}"`);
        out.shape = value as ResponseShape;
        break;
      case '--session-idle-ms':
        out.sessionIdleMs = intFlag(flag, value, 1, 2_147_483_647);
        break;
      case '--send-hold-ms':
        out.sendHoldMs = intFlag(flag, value, 0, 600_000);
        break;
    }
  }
  return out;
}

async function main(): Promise<void> {
  let opts: CliOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`emulator: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { quiet, help: _help, ...emulatorOptions } = opts;
  void _help;
  const log = quiet ? undefined : (line: string): void => void process.stderr.write(`${line}\n`);
  let emulator;
  try {
    emulator = await startEmulator({ ...emulatorOptions, log });
  } catch (e) {
    process.stderr.write(`emulator: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  const auth = opts.apiKey ? 'only the given API key is accepted' : 'any Bearer token is accepted';
  process.stderr.write(`webrun emulator listening on ${emulator.url} (${auth})\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    if (!quiet) process.stderr.write(`emulator: ${signal}, stopping\n`);
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (require.main === module) {
  void main();
}
