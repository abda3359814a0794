/**
 * `npx webrun-sfn <command>`: deployed workflows (start, follow, result, stop, list) and the local runner
 * (`local`, which is cli/local.ts's `main`, unchanged). Returns the exit code: 0 ok, 1 the execution failed,
 * was aborted or timed out, 2 the command could not do its job (usage, input, credentials, region, unknown ARN).
 */
import { parseArgs } from 'node:util';
import type { CliIo as LocalCliIo } from './process';
import { CliError, EXIT } from './aws';
import { BATCH_USAGE, batchMain } from './batch';
import { main as localCommand } from './local';
import { followCommand, intervalSeconds as checkedInterval, listCommand, resultCommand, startCommand, stopCommand, type CommandIo } from './commands';
import { answerCommand, pendingCommand } from './questions';

export const USAGE = `Usage: npx webrun-sfn <command> [options]

Deployed workflows (AWS credentials and region as for the AWS CLI: AWS_PROFILE, AWS_REGION, ...):
  start <input.json | ->   validate the input locally, then start an execution; prints its ARN
      --follow               then follow it to the end (exit code as for follow; --refs as for result)
      --name <name>          execution name: the same name and input while it runs start it only once
  follow <executionArn>    live progress from the execution history until it ends, then its result
      --interval <s>         seconds between history polls (default 2, at most 3600)
      --refs                 as for result
  result <executionArn>    status and output (or error) of an execution, stored results read back
      --refs                 print stored results as their references (s3://...), unread
  stop <executionArn>      stop an execution; its webrun session is then terminated
      --cause <text>         the reason recorded with the stop
  list                     latest executions, newest first
      --status <S>           RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED
      --max <n>              at most n executions (default 20)
  pending                  guardrail questions waiting for a person's answer
  answer <executionArn> "<text>"   answer the question the execution waits on
      --stop                 stop the run instead (Webrun.GuardrailStopped)

The state machine (start, list, pending): --state-machine-arn <arn>, else WEBRUN_STATE_MACHINE_ARN, else the
StateMachineArn output of the stack (--stack <name>, else stackName in webrun.config.json or --config <path>,
else WebrunSfn).

${BATCH_USAGE}

Local runner, no AWS account needed:
  local <input.json> [--json] [--base-url URL] [--wait-scale F]   (see \`webrun-sfn local --help\`)
  local --batch <items> --template <t.json> [--concurrency N] [--tolerate P]   a batch, locally

Everywhere:
  --json                   one JSON object on stdout (progress and messages stay on stderr)
  --region <region>        AWS region (commands on an ARN use the ARN's region)
  -h, --help               this help

Exit codes: 0 ok, 1 the execution failed, was aborted or timed out, 2 usage, input or AWS access errors,
130 follow interrupted (Ctrl-C; the execution goes on).`;

/** `webrun-sfn <command> --help`: the command's own lines of USAGE, then what applies everywhere. */
export function commandUsage(command: string): string {
  const lines = USAGE.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`  ${command} `) || l === `  ${command}`);
  if (at < 0) return USAGE;
  const own = [lines[at]];
  for (const line of lines.slice(at + 1)) {
    if (!line.startsWith('      ')) break;
    own.push(line);
  }
  const targetsStateMachine = ALLOWED[command]?.includes('state-machine-arn') ?? false;
  const everywhere = lines.slice(lines.indexOf('Everywhere:'));
  return [
    `Usage: npx webrun-sfn ${own[0].trim().replace(/\s{2,}.*$/, '')} [options]`,
    '',
    ...own,
    '',
    ...(targetsStateMachine ? [...lines.slice(lines.findIndex((l) => l.startsWith("The state machine")), lines.findIndex((l) => l.startsWith('else WebrunSfn')) + 1), ''] : []),
    ...everywhere,
  ].join('\n');
}

/** `webrun-sfn batch --help` (and each batch command's): the batch commands, then what applies everywhere. */
export function batchUsage(): string {
  const lines = USAGE.split('\n');
  return ['Usage: npx webrun-sfn batch <start | status | results> [options]', '', BATCH_USAGE, '', ...lines.slice(lines.indexOf('Everywhere:'))].join('\n');
}

export interface CliIo extends CommandIo {
  argv: string[];
  /** The local runner's entry point. @default cli/local.ts `main` (tests give their own) */
  localMain?: (io: LocalCliIo) => Promise<number>;
}

const COMMON = ['json', 'region', 'help'];
const ALLOWED: Record<string, string[]> = {
  start: [...COMMON, 'follow', 'name', 'state-machine-arn', 'stack', 'config', 'interval', 'refs'],
  follow: [...COMMON, 'interval', 'refs'],
  result: [...COMMON, 'refs'],
  stop: [...COMMON, 'cause'],
  list: [...COMMON, 'status', 'max', 'state-machine-arn', 'stack', 'config'],
  pending: [...COMMON, 'state-machine-arn', 'stack', 'config'],
  answer: [...COMMON, 'stop'],
};
const POSITIONAL: Record<string, string | undefined> = { start: '<input.json>', follow: '<executionArn>', result: '<executionArn>', stop: '<executionArn>', list: undefined, pending: undefined, answer: '<executionArn>' };

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        follow: { type: 'boolean', default: false },
        name: { type: 'string' },
        'state-machine-arn': { type: 'string' },
        stack: { type: 'string' },
        config: { type: 'string' },
        interval: { type: 'string' },
        cause: { type: 'string' },
        status: { type: 'string' },
        max: { type: 'string' },
        refs: { type: 'boolean', default: false },
        stop: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new CliError((err as Error).message, true);
  }
}

function number(flag: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min) throw new CliError(`--${flag} must be a number >= ${min}, got ${JSON.stringify(raw)}`, true);
  return value;
}

async function run(io: CliIo, command: string, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    io.stderr(`${commandUsage(command)}\n`);
    return EXIT.ok;
  }
  const allowed = ALLOWED[command];
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === false || allowed.includes(key)) continue;
    throw new CliError(`--${key} does not apply to \`${command}\``, true);
  }
  if (command === 'answer') {
    if (positionals.length < 1 || positionals.length > 2) throw new CliError('`answer` needs <executionArn> and then "<text>" (or --stop)', true);
    return answerCommand(io, { ...{ json: values.json ?? false, region: values.region }, stop: values.stop ?? false }, positionals[0], positionals[1]);
  }
  const expected = POSITIONAL[command];
  if (expected && positionals.length !== 1) throw new CliError(positionals.length === 0 ? `\`${command}\` needs ${expected}` : `\`${command}\` takes one ${expected}, got ${positionals.length}: ${positionals.join(' ')}`, true);
  if (!expected && positionals.length > 0) throw new CliError(`\`${command}\` takes no argument, got ${positionals.join(' ')}`, true);
  const common = { json: values.json ?? false, region: values.region, refs: values.refs ?? false };
  const target = { stateMachineArn: values['state-machine-arn'], stack: values.stack, config: values.config };
  const intervalSeconds = checkedInterval(values.interval);
  switch (command) {
    case 'start':
      return startCommand(io, { ...common, ...target, follow: values.follow ?? false, name: values.name, intervalSeconds }, positionals[0]);
    case 'follow':
      return followCommand(io, { ...common, intervalSeconds }, positionals[0]);
    case 'result':
      return resultCommand(io, common, positionals[0]);
    case 'stop':
      return stopCommand(io, { ...common, cause: values.cause }, positionals[0]);
    case 'pending':
      return pendingCommand(io, { ...common, ...target });
    default:
      return listCommand(io, { ...common, ...target, status: values.status, max: number('max', values.max, 1) });
  }
}

/** Runs `webrun-sfn <argv>`; returns the exit code. */
export async function main(io: CliIo): Promise<number> {
  const [command, ...rest] = io.argv;
  if (command === 'local') {
    const localMain = io.localMain ?? localCommand;
    return localMain({ argv: rest, env: io.env, stdout: io.stdout, stderr: io.stderr, readStdin: io.readStdin, signal: io.signal });
  }
  const wantsJson = io.argv.includes('--json');
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.stderr(`${USAGE}\n`);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  try {
    if (command === 'batch') return await batchMain(io, rest, batchUsage());
    if (!(command in ALLOWED)) throw new CliError(`unknown command ${JSON.stringify(command)}`, true);
    return await run(io, command, rest);
  } catch (err) {
    // AWS calls are wrapped where they are made; anything else is a bug, left to the caller to report.
    if (!(err instanceof CliError)) throw err;
    const e = err;
    io.stderr(`webrun-sfn: ${e.message}\n${e.showUsage ? `\n${USAGE}\n` : ''}`);
    // The same shape as the local command's and Step Functions' own errors: a name and a cause.
    if (wantsJson) io.stdout(`${JSON.stringify({ error: { name: e.name, cause: e.message } })}\n`);
    return EXIT.usage;
  }
}
