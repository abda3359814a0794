/**
 * `npm start -- --batch <items> --template <t.json> [--concurrency N] [--tolerate P] [--json]`: the local batch
 * (local/batch.ts), against the same target as a single run (the built-in emulator by default; --base-url,
 * WEBRUN_BASE_URL, WEBRUN_API_KEY as for a single run). Every item is checked before anything starts; a bad one
 * is named by its line (exit 2). Progress on stderr: a live bar on a terminal, else one line per finished item;
 * then a final count. stdout: the `--json` summary, else one JSON line per item (item, status, output or error).
 * Exit 0 within the tolerated failures, 1 otherwise (or stopped), 2 usage or invalid items.
 */
import { isPlainObject } from '../lambdas/shared/schema/core';
import { runLocalBatch, type BatchItemResult, type LocalBatchSummary } from '../local/batch';
import { checkItems, itemFormat, ItemsError, parseItems, templateProblem, type BatchItem } from '../local/batch-items';
import { readableCause } from '../local/progress';
import { finalCount, TerminalProgress, type BatchCounts, type ProgressStream } from './batch-progress';
import { isLoopback, readEmulatorTasks, readSiteCredentials, readUserFile, requireSiteSecretsSource, resolveTarget, resultsFolder, UsageError, userPath, type BatchFlags, type UserPath } from './local-options';
import { readJsonInput, readText, type CliIo } from './process';
import type { CompletionMode } from '../lambdas/shared/contract';

export interface LocalBatchIo extends CliIo {
  /** Where the live bar is drawn. @default stderr when it is this process's terminal, else none (one line per item) */
  progressStream?: ProgressStream;
}

export interface LocalBatchCli {
  json: boolean;
  baseUrl?: string;
  waitScale: number;
  resultsDir?: string;
  completion: CompletionMode;
  /** Task behaviours for the built-in emulator (`--emulator-tasks`), one per task sent, in order. */
  emulatorTasks?: string;
  batch: BatchFlags;
  /** The folder relative paths are relative to: the user's (cli/local-options.ts `userFolder`). */
  folder: string;
}

const sourceName = (file: string) => (file === '-' ? 'stdin' : file);

async function readTemplate(given: UserPath, io: CliIo): Promise<Record<string, unknown>> {
  const file = given.given;
  let template: unknown;
  try {
    template = await readUserFile(given, (path) => readJsonInput(path, io.readStdin));
  } catch (err) {
    throw new UsageError(`--template: ${(err as Error).message}`, false);
  }
  if (!isPlainObject(template)) throw new UsageError(`--template: ${sourceName(file)} must hold a workflow input object with "tasks"`, false);
  // As deployed: a template the batch state machine cannot hold fails there, so it fails here too.
  const problem = templateProblem(template);
  if (problem) throw new UsageError(`--template: ${sourceName(file)}: ${problem}`, false);
  return template;
}

async function readItems(given: UserPath, io: CliIo): Promise<{ items: BatchItem[]; format: ReturnType<typeof itemFormat> }> {
  const file = given.given;
  let text: string;
  try {
    text = await readUserFile(given, (path) => readText(path, io.readStdin));
  } catch (err) {
    throw new UsageError(`--batch: ${(err as Error).message}`, false);
  }
  const format = itemFormat(file, text);
  try {
    return { items: parseItems(text, format, sourceName(file)), format };
  } catch (err) {
    if (err instanceof ItemsError) throw new UsageError(err.message, false);
    throw err;
  }
}

const short = (value: unknown, max = 60) => {
  const text = JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

/** One line for a finished item (stderr is not a terminal). */
function itemLine(item: BatchItem, result: BatchItemResult, done: number, total: number): string {
  const where = `${String(done).padStart(String(total).length)}/${total} line ${item.line} ${short(item.vars)}`;
  if (result.status === 'SUCCEEDED') return `  ✔ ${where} succeeded`;
  if (result.status === 'ABORTED') return `  ■ ${where} stopped`;
  return `  ✘ ${where} failed: ${result.error?.name ?? 'Error'}: ${readableCause(result.error?.cause ?? '').split('\n')[0]}`;
}

/** The `--json` summary: exactly the contract's fields. */
function contractSummary(summary: LocalBatchSummary) {
  const { status, items, results, stats } = summary;
  return { status, items, results, stats };
}

export async function localBatchMain(io: LocalBatchIo, cli: LocalBatchCli): Promise<number> {
  const flags = cli.batch;
  const template = await readTemplate(userPath(flags.template, cli.folder), io);
  const { items, format } = await readItems(userPath(flags.items, cli.folder), io);
  try {
    // Every item, before anything starts: a bad one is named by its line.
    checkItems(template, items, sourceName(flags.items));
  } catch (err) {
    if (err instanceof ItemsError) throw new UsageError(`${err.message}\n(${err.problems.length} of ${items.length} items refused; nothing was started)`, false);
    throw err;
  }
  const siteCredentials = await readSiteCredentials(io.env, cli.folder);
  requireSiteSecretsSource(template, siteCredentials, `--template ${flags.template}`);
  const resultsDir = resultsFolder(cli.resultsDir, cli.folder);
  const emulatorTasks = cli.emulatorTasks === undefined ? undefined : await readEmulatorTasks(userPath(cli.emulatorTasks, cli.folder), io);
  const target = await resolveTarget(cli.baseUrl, io.env, cli.waitScale);
  try {
    if (emulatorTasks) {
      if (!target.emulator) throw new UsageError(`--emulator-tasks scripts the built-in emulator, but this batch uses ${target.label}`);
      target.emulator.enqueueTasks(...emulatorTasks);
    }
    if (cli.completion === 'webhook' && !isLoopback(new URL(target.baseUrl))) {
      throw new UsageError(`--completion webhook needs a base URL on loopback (the doorbell receiver listens on 127.0.0.1), got ${target.baseUrl}`);
    }
    if (target.paid) {
      io.stderr(`webrun-sfn: WEBRUN_API_KEY is set, so this batch uses the REAL webrun API at ${target.baseUrl}: each of its ${items.length} items opens a billed browser session.\n  (unset WEBRUN_API_KEY to run against the built-in emulator instead)\n`);
    }
    io.stderr(`webrun-sfn: running a batch of ${items.length} item(s) from ${sourceName(flags.items)} (${format}), at most ${flags.concurrency} at once, ${flags.tolerate}% tolerated, against ${target.label}\n`);

    const stream = io.progressStream ?? (io.env === process.env && process.stderr.isTTY === true ? process.stderr : undefined);
    const bar = stream?.isTTY ? new TerminalProgress(stream, items.length) : undefined;
    const counts: BatchCounts = { total: items.length, succeeded: 0, failed: 0, running: 0, aborted: 0 };
    let done = 0;
    let summary: LocalBatchSummary;
    try {
      summary = await runLocalBatch({
        template,
        items,
        format,
        concurrency: flags.concurrency,
        toleratedFailurePercentage: flags.tolerate,
        baseUrl: target.baseUrl,
        apiKey: target.apiKey,
        siteCredentials,
        waitScale: cli.waitScale,
        resultsDir,
        completion: cli.completion,
        signal: io.signal,
        onItemStarted: () => {
          counts.running++;
          bar?.update(counts);
        },
        onItemFinished: (item, result) => {
          counts.running--;
          done++;
          if (result.status === 'SUCCEEDED') counts.succeeded++;
          else if (result.status === 'FAILED') counts.failed++;
          else counts.aborted = (counts.aborted ?? 0) + 1;
          if (bar) bar.update(counts);
          else io.stderr(`${itemLine(item, result, done, items.length)}\n`);
        },
      });
    } finally {
      bar?.stop();
    }
    const mark = summary.status === 'SUCCEEDED' ? '✔' : '✘';
    io.stderr(`${mark} batch ${summary.status.toLowerCase()}: ${finalCount({ ...counts, running: 0 }, summary.stats.wallMs)}\n`);
    if (summary.error) io.stderr(`  ${summary.error.name}: ${summary.error.cause}\n`);
    if (summary.status === 'SUCCEEDED' && summary.items.failed > 0) io.stderr(`  ${summary.items.failed} failed item(s) are within --tolerate ${flags.tolerate}%\n`);
    if (cli.json) io.stdout(`${JSON.stringify(contractSummary(summary))}\n`);
    else for (const result of summary.results) io.stdout(`${JSON.stringify(result)}\n`);
    return summary.status === 'SUCCEEDED' ? 0 : 1;
  } finally {
    await target.emulator?.close();
  }
}
