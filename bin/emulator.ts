/**
 * Runs the webrun API emulator on 127.0.0.1: `npm run emulator -- --port 8787` (see --help and docs/EMULATOR.md).
 *
 * Prints the URL on stderr, logs one line per request or doorbell (never headers or bodies) unless --quiet, stops
 * cleanly on SIGINT, SIGTERM and SIGHUP, and also when the process that started it goes away (e.g. `kill` of a
 * backgrounded `npm run emulator`). Bad flags: a message naming the flag, exit 2.
 */
import { parseArgs as parseFlags } from 'node:util';
import { startEmulator, type Emulator, type EmulatorOptions } from '../local/emulator';
import { watchAncestors } from '../local/emulator/parent-watch';

export const USAGE = `usage: npm run emulator -- [flags]
Serves the webrun API (POST /start/start-session, /start/send-message, /start/run-task; GET /task/{sessionId}/{taskId})
on 127.0.0.1 with the documented answer shapes and Bearer auth.

  --port N                 port on 127.0.0.1 (default 0: a free port, printed)
  --api-key K              accept only "Bearer K" (default: any non-empty Bearer token); or set
                           WEBRUN_EMULATOR_API_KEY, which keeps K out of ps and npm's echo of the command
  --pending-polls N        GET /task answers pending N times before the outcome (default 2)
  --shape S                answer shape: documented (default) or status
  --session-idle-ms MS     inactivity expiry of a session (default 300000)
  --send-hold-ms MS        how long send-message holds an unfinished task (default 0)
  --max-sessions N         start-session answers 429 SESSION_LIMIT_REACHED while N sessions are open (default: no limit)
  --balance USD            balance in the start-session answer (default 12.5)
  --task-cost USD          cost a task reaches when it completes (default: a token-based estimate)
  --cost-per-second USD    running cost per second a task is pending (default: none; wins over --task-cost)
  --webhook-pending-ms MS  how long a task sent with a webhook stays pending (default 200)
  --doorbell-delay-ms MS   ring webhooks this long after the task ended (default 0)
  --doorbell-duplicate N   ring each webhook N times (default 1)
  --doorbell-drop          never ring webhooks (polling still works)
  --doorbell-early         also ring each webhook once halfway through the task, before it ended
  --no-parent-watch        keep serving after the process that started it exits (default: stop)
  --quiet                  no request log
  -h, --help               this text

Control endpoints (no auth, never recorded):
  GET  /__emulator/ledger    sessions, tasks, requests, doorbells, counts (created, terminated, open, expired, maxOpen)
  POST /__emulator/tasks     queue task behaviours: {"outcome":"completed"|"guardrail"|"failed"|"stuck", ...} or an array
  POST /__emulator/faults    inject fault rules: {"endpoint":"start"|"send"|"terminate"|"poll"|"run-task"|"any", ...} or an array
  POST /__emulator/doorbell  ring a forged doorbell: {"url":"http://127.0.0.1:.../hook","body":{...},"headers":{...}}
  POST /__emulator/reset     clear queue, faults, ledger and scheduled doorbells
Field reference: docs/EMULATOR.md`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CliOptions extends EmulatorOptions {
  quiet: boolean;
  help: boolean;
  parentWatch: boolean;
}

const FLAGS = {
  port: { type: 'string' },
  'api-key': { type: 'string' },
  'pending-polls': { type: 'string' },
  shape: { type: 'string' },
  'session-idle-ms': { type: 'string' },
  'send-hold-ms': { type: 'string' },
  'max-sessions': { type: 'string' },
  balance: { type: 'string' },
  'task-cost': { type: 'string' },
  'cost-per-second': { type: 'string' },
  'webhook-pending-ms': { type: 'string' },
  'doorbell-delay-ms': { type: 'string' },
  'doorbell-duplicate': { type: 'string' },
  'doorbell-drop': { type: 'boolean' },
  'doorbell-early': { type: 'boolean' },
  'no-parent-watch': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Every long flag, for --help and its test. */
export const FLAG_NAMES: readonly string[] = Object.keys(FLAGS).map((f) => `--${f}`);

function intFlag(flag: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

function usdFlag(flag: string, value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new UsageError(`${flag} must be a non-negative number of dollars, got "${value}"`);
  return Number(value);
}

/** node:util's parse errors, reworded to name the flag. */
function usageError(e: unknown): Error {
  if (!(e instanceof Error)) return new UsageError(String(e));
  const code = (e as NodeJS.ErrnoException).code;
  const quoted = /'([^']*)'/.exec(e.message)?.[1] ?? '';
  const flag = quoted.split(' ')[0];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown flag: ${flag}`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument: ${quoted}`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new UsageError(/does not take an argument/.test(e.message) ? `${flag} takes no value` : `${flag} needs a value`);
    default:
      return e;
  }
}

/** The key, from the environment: a flag's value shows in `ps` and in npm's echo of the command. */
export const API_KEY_ENV = 'WEBRUN_EMULATOR_API_KEY';

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
  let values: { [K in keyof typeof FLAGS]?: (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean : string };
  try {
    values = parseFlags({ args: argv, options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw usageError(e);
  }
  const out: CliOptions = { quiet: values.quiet === true, help: values.help === true, parentWatch: values['no-parent-watch'] !== true };
  const v = values;
  if (v.port !== undefined) out.port = intFlag('--port', v.port, 0, 65535);
  if (v['api-key'] !== undefined) {
    if (v['api-key'] === '') throw new UsageError('--api-key must not be empty');
    out.apiKey = v['api-key'];
  } else if (env[API_KEY_ENV]) {
    out.apiKey = env[API_KEY_ENV];
  }
  if (v['pending-polls'] !== undefined) out.pendingPolls = intFlag('--pending-polls', v['pending-polls'], 0, 1_000_000);
  if (v.shape !== undefined) {
    if (v.shape !== 'documented' && v.shape !== 'status') throw new UsageError(`--shape must be documented or status, got "${v.shape}"`);
    out.shape = v.shape;
  }
  if (v['session-idle-ms'] !== undefined) out.sessionIdleMs = intFlag('--session-idle-ms', v['session-idle-ms'], 1, 2_147_483_647);
  if (v['send-hold-ms'] !== undefined) out.sendHoldMs = intFlag('--send-hold-ms', v['send-hold-ms'], 0, 600_000);
  if (v['max-sessions'] !== undefined) out.maxSessions = intFlag('--max-sessions', v['max-sessions'], 1, 1_000_000);
  if (v.balance !== undefined) out.balance = usdFlag('--balance', v.balance);
  if (v['task-cost'] !== undefined) out.taskCost = usdFlag('--task-cost', v['task-cost']);
  if (v['cost-per-second'] !== undefined) out.costPerSecond = usdFlag('--cost-per-second', v['cost-per-second']);
  if (v['webhook-pending-ms'] !== undefined) out.webhookPendingMs = intFlag('--webhook-pending-ms', v['webhook-pending-ms'], 0, 600_000);
  const doorbell: NonNullable<EmulatorOptions['doorbell']> = {};
  if (v['doorbell-delay-ms'] !== undefined) doorbell.delayMs = intFlag('--doorbell-delay-ms', v['doorbell-delay-ms'], 0, 600_000);
  if (v['doorbell-duplicate'] !== undefined) doorbell.duplicate = intFlag('--doorbell-duplicate', v['doorbell-duplicate'], 1, 100);
  if (v['doorbell-drop']) doorbell.drop = true;
  if (v['doorbell-early']) doorbell.early = true;
  if (Object.keys(doorbell).length > 0) out.doorbell = doorbell;
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
  const { quiet, help, parentWatch, ...emulatorOptions } = opts;
  void help;
  // Handlers first: a signal that arrives while starting (or right after the URL is printed) still stops cleanly.
  let emulator: Emulator | undefined;
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`emulator: ${why}, stopping\n`);
    (emulator?.close() ?? Promise.resolve()).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
  if (parentWatch) watchAncestors((reason) => stop(`${reason} (the process that started the emulator is gone)`));

  const log = quiet ? undefined : (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    emulator = await startEmulator({ ...emulatorOptions, log });
  } catch (e) {
    process.stderr.write(`emulator: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  const auth = opts.apiKey ? 'only the given API key is accepted' : 'any Bearer token is accepted';
  process.stderr.write(`webrun emulator listening on ${emulator.url} (${auth})\n`);
}

if (require.main === module) {
  void main();
}
