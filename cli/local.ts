/**
 * The local command: `npm start -- <input.json> [--json] [--base-url URL] [--wait-scale F]`.
 * Contract (shared/DESIGN.md): base URL from --base-url, else WEBRUN_BASE_URL, else the real API when
 * WEBRUN_API_KEY is set, else the built-in emulator on a free loopback port. Exit 0 succeeded, 1 the workflow
 * failed, 2 bad usage or invalid input. `--json` prints one summary object on stdout; progress goes to stderr.
 */
import { parseArgs } from 'node:util';
import { BATCH_LIMITS } from '../lambdas/shared/batch-contract';
import { CompletionModes, WebrunErrors, type CompletionMode } from '../lambdas/shared/contract';
import type { SiteCredentialResolver } from '../lambdas/shared/site-credentials';
import type { PersonsAnswer } from '../lambdas/shared/state';
import { keptResultsText, readableCause } from '../local/progress';
import { runLocalWorkflow, type LocalQuestion, type LocalRunSummary } from '../local/runner';
import { localBatchMain } from './local-batch';
import { batchFlags, isLoopback, readEmulatorTasks, readSiteCredentials, readUserFile, requireSiteSecretsSource, resolveTarget, resultsFolder, UsageError, userFolder, userPath, type Target, type UserPath } from './local-options';
import { readJsonInput, type CliIo } from './process';

/** The largest --wait-scale: ten times the deployed timings. */
const MAX_WAIT_SCALE = 10;

export const USAGE = `Usage: npm start -- <input.json | -> [--json] [--base-url URL] [--wait-scale F] [--results-dir DIR] [--completion poll|webhook]
                    [--emulator-tasks FILE]
   or: npx webrun-sfn local <input.json | -> [the same options]
       npm start -- --batch <items> --template <t.json> [--concurrency N] [--tolerate P] [--json] [...the same options]

Runs the webrun-sfn state machine locally, in-process, against the built-in webrun emulator
(default), WEBRUN_BASE_URL / --base-url, or the real API when WEBRUN_API_KEY is set.

  --json             print one JSON summary on stdout (progress stays on stderr)
  --base-url URL     webrun API base URL (overrides WEBRUN_BASE_URL); https unless it is on loopback
  --wait-scale F     multiply every Wait state and Retry interval by F, 0 to 10 (0 = do not wait); under 1
                     only against an API on loopback, such as the built-in emulator
  --results-dir DIR  where results too large for the state are written (default: <temp dir>/webrun-sfn-results-<uid>)
  --completion M     how a pending task's end is learned: poll (default, as deployed by default) or webhook
                     (a doorbell receiver on 127.0.0.1, polling as its fallback; needs a base URL on loopback)
  --emulator-tasks FILE  script the built-in emulator: a JSON array of task behaviours, one per task sent, in
                     order (e.g. [{"outcome":"completed","questions":["Confirm purchase?"]}]; docs/EMULATOR.md)
  -h, --help         show this help

Batches (docs/BATCHES.md): the template run once per item, each item's fields as its "vars":
  --batch FILE       the items: a JSON array (.json), JSON Lines (.jsonl/.ndjson) or CSV with a header row (.csv);
                     other names by their first character. Every item is checked first: a bad one is named by its
                     line and nothing starts (exit 2)
  --template FILE    the workflow input every item runs with ({{name}} placeholders; its "vars" are defaults)
  --concurrency N    items run at once (default ${BATCH_LIMITS.defaultMaxConcurrency})
  --tolerate P       the share of items (0-100 %) that may fail with exit 0 (default 0); past it the batch fails
                     and stops, as the deployed batch does

Ctrl-C, SIGTERM and SIGHUP stop the run: its session is terminated and the summary printed (exit 1), the
results completed before the stop kept in its cause.

A task's "secrets" references (site logins) are read from the JSON file named by WEBRUN_SITE_SECRETS_FILE,
{"webrun-sfn/<name>": {"username": "...", "password": "..."}}, the local stand-in for Secrets Manager. Without
it, an input that names a login is refused before any session opens (exit 2).

Relative paths (files, --results-dir, WEBRUN_SITE_SECRETS_FILE) are from the folder the command was typed in
(npm's INIT_CWD), not the package folder npm runs it in.

Exit codes: 0 succeeded (a batch: within --tolerate), 1 the workflow (or batch) failed, 2 bad usage or invalid input.`;

function parseCli(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        'base-url': { type: 'string' },
        'wait-scale': { type: 'string' },
        'results-dir': { type: 'string' },
        completion: { type: 'string' },
        'emulator-tasks': { type: 'string' },
        batch: { type: 'string' },
        template: { type: 'string' },
        concurrency: { type: 'string' },
        tolerate: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true as const, json: values.json };
  const batch = batchFlags(values, positionals);
  if (!batch && positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <input.json>' : `expected one input file, got ${positionals.length}: ${positionals.join(' ')}`);
  let waitScale = 1;
  if (values['wait-scale'] !== undefined) {
    waitScale = Number(values['wait-scale']);
    // At most 10: past it the longest waits (a guardrail question's 280 s, a doorbell's 390 s) outgrow any use, and
    // far past it a timer overflows and fires at once, which would mean no wait at all.
    if (values['wait-scale'].trim() === '' || !Number.isFinite(waitScale) || waitScale < 0 || waitScale > MAX_WAIT_SCALE) {
      throw new UsageError(`--wait-scale must be a number from 0 to ${MAX_WAIT_SCALE}, got ${JSON.stringify(values['wait-scale'])}`);
    }
  }
  if (values['results-dir'] !== undefined && values['results-dir'].trim() === '') throw new UsageError('--results-dir must name a folder');
  const completion = (values.completion ?? CompletionModes.poll) as CompletionMode;
  if (!(Object.values(CompletionModes) as string[]).includes(completion)) throw new UsageError(`--completion must be poll or webhook, got ${JSON.stringify(completion)}`);
  if (values['emulator-tasks'] !== undefined && values['emulator-tasks'].trim() === '') throw new UsageError('--emulator-tasks must name a JSON file');
  const stdinReaders = [positionals[0] === '-' && 'the input', values.batch === '-' && '--batch', values.template === '-' && '--template', values['emulator-tasks'] === '-' && '--emulator-tasks'].filter(Boolean);
  if (stdinReaders.length > 1) throw new UsageError(`${stdinReaders.join(' and ')} cannot ${stdinReaders.length === 2 ? 'both' : 'all'} read stdin`);
  return { help: false as const, json: values.json, inputPath: positionals[0] ?? '', baseUrl: values['base-url'], waitScale, resultsDir: values['results-dir'], completion, emulatorTasks: values['emulator-tasks'], batch };
}

async function readInput(file: UserPath, io: CliIo): Promise<unknown> {
  try {
    return await readUserFile(file, (path) => readJsonInput(path, io.readStdin));
  } catch (err) {
    throw new UsageError((err as Error).message, false);
  }
}

function emptyStats() {
  return { stateTransitions: 0, lambdaInvocations: 0, wallMs: 0, historyEvents: 0, largestPayloadBytes: 0, storedResults: 0 };
}

function printOutcome(summary: LocalRunSummary, io: CliIo): void {
  const { stats } = summary;
  const totals = `${stats.stateTransitions} state transitions, ${stats.lambdaInvocations} Lambda invocations, ${(stats.wallMs / 1000).toFixed(1)} s`;
  if (summary.status === 'SUCCEEDED' && summary.output) {
    io.stderr(`✔ succeeded: ${summary.output.tasks.length} task(s) completed (${totals})\n`);
    return;
  }
  io.stderr(`✘ failed: ${summary.error?.name}\n  ${readableCause(summary.error?.cause ?? '')}\n  (${totals})\n`);
}

/**
 * A guardrail question for a person, locally: asked on the terminal (the live view only here, never in a log), or
 * said plainly when there is no terminal, where the question runs out at its timeout.
 */
async function askOnTerminal(q: LocalQuestion, io: CliIo): Promise<PersonsAnswer | 'stop' | undefined> {
  io.stderr(`\n  task ${q.taskIndex + 1} asks: ${q.question}\n${q.liveViewUrl ? `  watch the browser live: ${q.liveViewUrl}\n` : ''}  answer before ${q.deadline}\n`);
  if (!io.ask) {
    io.stderr('  (no terminal to answer on: the run waits until the deadline, then ends with Webrun.GuardrailUnanswered)\n');
    return undefined;
  }
  const line = (await io.ask('  your answer ("stop" ends the run): ', q.closed))?.trim();
  if (line === undefined || line === '') return undefined;
  return line.toLowerCase() === 'stop' ? 'stop' : { answer: line };
}

/** What stdout gets without --json: the output, or on a failure the results it kept (which are the user's data). */
function printResults(summary: LocalRunSummary, io: CliIo): void {
  if (summary.output) {
    io.stdout(`${JSON.stringify(summary.output, null, 2)}\n`);
    return;
  }
  const kept = keptResultsText(summary.error?.cause, summary.sessionId);
  if (kept) io.stdout(kept);
}

/** Runs the local command; returns the exit code. */
export async function main(io: CliIo): Promise<number> {
  const wantsJson = io.argv.includes('--json');
  const batchMode = io.argv.some((arg) => arg === '--batch' || arg.startsWith('--batch='));
  const fail = (name: string, cause: string, code: number, showUsage: boolean) => {
    io.stderr(`webrun-sfn: ${cause}\n${showUsage ? `\n${USAGE}\n` : ''}`);
    // A batch's summary keeps the batch contract's shape (nothing ran), with the reason as a single run's has it.
    const summary = batchMode
      ? { status: 'FAILED', items: { total: 0, succeeded: 0, failed: 0 }, results: [], error: { name, cause }, stats: { stateTransitions: 0, lambdaInvocations: 0, wallMs: 0 } }
      : { status: 'FAILED', error: { name, cause }, stats: emptyStats() };
    if (wantsJson) io.stdout(`${JSON.stringify(summary)}\n`);
    return code;
  };
  let cli;
  let input: unknown;
  let siteCredentials: SiteCredentialResolver | undefined;
  let target: Target;
  let resultsDir: string;
  try {
    cli = parseCli(io.argv);
    if (cli.help) {
      io.stderr(`${USAGE}\n`);
      return 0;
    }
    // Where relative paths are: npm runs `npm start` in the package folder, not where it was typed.
    const folder = userFolder(io.env);
    if (cli.batch) {
      return await localBatchMain(io, { ...cli, batch: cli.batch, folder });
    }
    input = await readInput(userPath(cli.inputPath, folder), io);
    siteCredentials = await readSiteCredentials(io.env, folder);
    requireSiteSecretsSource(input, siteCredentials, cli.inputPath);
    resultsDir = resultsFolder(cli.resultsDir, folder);
    const emulatorTasks = cli.emulatorTasks === undefined ? undefined : await readEmulatorTasks(userPath(cli.emulatorTasks, folder), io);
    target = await resolveTarget(cli.baseUrl, io.env, cli.waitScale);
    if (emulatorTasks) {
      if (!target.emulator) throw new UsageError(`--emulator-tasks scripts the built-in emulator, but this run uses ${target.label}`);
      target.emulator.enqueueTasks(...emulatorTasks);
    }
    if (cli.completion === 'webhook' && !isLoopback(new URL(target.baseUrl))) {
      await target.emulator?.close();
      // The receiver listens on 127.0.0.1: an API elsewhere could never ring it.
      throw new UsageError(`--completion webhook needs a base URL on loopback (the doorbell receiver listens on 127.0.0.1), got ${target.baseUrl}`);
    }
  } catch (err) {
    if (err instanceof UsageError) return fail(WebrunErrors.InvalidInput, err.message, 2, err.showUsage);
    throw err;
  }
  try {
    if (target.paid) {
      // Said before any session exists: the same command runs free against the emulator without WEBRUN_API_KEY.
      io.stderr(`webrun-sfn: WEBRUN_API_KEY is set, so this run uses the REAL webrun API at ${target.baseUrl}: it opens a billed browser session.\n  (unset WEBRUN_API_KEY to run against the built-in emulator instead)\n`);
    }
    io.stderr(`webrun-sfn: running ${cli.inputPath} locally against ${target.label}\n`);
    const summary = await runLocalWorkflow({
      input,
      baseUrl: target.baseUrl,
      apiKey: target.apiKey,
      waitScale: cli.waitScale,
      siteCredentials,
      resultsDir,
      completion: cli.completion,
      onQuestion: (q) => askOnTerminal(q, io),
      onProgress: (line) => io.stderr(`${line}\n`),
      signal: io.signal,
    });
    printOutcome(summary, io);
    if (summary.stats.storedResults > 0) io.stderr(`  ${summary.stats.storedResults} result(s) too large for the state are in ${resultsDir}\n`);
    if (cli.json) io.stdout(`${JSON.stringify(summary)}\n`);
    else printResults(summary, io);
    if (summary.status === 'SUCCEEDED') return 0;
    return summary.error?.name === WebrunErrors.InvalidInput ? 2 : 1;
  } finally {
    await target.emulator?.close();
  }
}
