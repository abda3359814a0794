/**
 * Runs a batch locally: the batch state machine that deploys (local/built/batch.json), in-process with
 * aws-local-stepfunctions, with one change of where items come from (local/batch-workflow.ts: ItemsPath for the
 * ItemReader). Its Distributed Map limits the items run at once (MaxConcurrencyPath, from the input); the Task state
 * that starts each child execution (`startExecution.sync:2` deployed) is overridden by name to run the workflow
 * locally with `runLocalWorkflow`, which ends the item's session whatever happens.
 *
 * Two things aws-local-stepfunctions does not do are done here, as Step Functions does them for a Map Run: tolerate
 * failed items (its Map fails on the first failed iteration, so a tolerated failure is reported here and returned
 * to the map as done) and, once more items failed than tolerated, fail the map with
 * States.ExceedToleratedFailureThreshold and stop the running items. A stop (the signal) stops every running item and
 * ends its session. Items never started are reported PENDING, as the ResultWriter does.
 */
import './polyfill';
import type { StateMachine } from 'aws-local-stepfunctions';
import { BatchStateNames, EXCEEDED_TOLERATED_FAILURES, ITEM_FORMATS, withinTolerance, type ItemFormat, type LocalBatchInput } from '../lambdas/shared/batch-contract';
import { CompletionModes, type CompletionMode, type WorkflowOutput } from '../lambdas/shared/contract';
import type { SiteCredentialResolver } from '../lambdas/shared/site-credentials';
import type { BatchItem } from './batch-items';
import { builtBatchDefinition, localBatchDefinition, type BatchDefinition } from './batch-workflow';
import { runLocalWorkflow, type LocalRunSummary } from './runner';
import { builtWorkflow, executorFor, type LocalWorkflow } from './workflow';

/** One item's outcome, as the `--json` summary and `batch results` give it. */
export interface BatchItemResult {
  /** The item as given (its vars). */
  item: Record<string, unknown>;
  /** SUCCEEDED or FAILED when it ran; ABORTED when a stop ended it; PENDING when it never started. */
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'PENDING';
  output?: WorkflowOutput;
  error?: { name: string; cause: string };
}

export interface LocalBatchSummary {
  /** SUCCEEDED: within the tolerated failures; FAILED: more failed (or the batch itself failed); ABORTED: stopped. */
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  items: { total: number; succeeded: number; failed: number };
  /** One per item, in the items' order. */
  results: BatchItemResult[];
  /** The batch's own state transitions and every child's, the children's Lambda invocations, the wall time. */
  stats: { stateTransitions: number; lambdaInvocations: number; wallMs: number };
  /** Why the batch failed, when it did (not in the `--json` summary, whose shape is the contract's). */
  error?: { name: string; cause: string };
}

export interface LocalBatchOptions {
  /** The workflow input every item runs with, its `vars` merged with the item's (the item wins). */
  template: Record<string, unknown>;
  /** The items, already read and checked (local/batch-items.ts). */
  items: readonly BatchItem[];
  /** Which map runs them (as deployed; locally the items are in the input either way). @default 'json' */
  format?: ItemFormat;
  /** Items run at once (the map's MaxConcurrency). */
  concurrency: number;
  /** The share of items (0-100) that may fail before the batch fails. @default 0 */
  toleratedFailurePercentage?: number;
  baseUrl: string;
  apiKey: string;
  siteCredentials?: SiteCredentialResolver;
  /** As for a single run: multiplies every Wait, Retry interval and in-Lambda pause. @default 1 */
  waitScale?: number;
  resultsDir?: string;
  /** Which built workflow each item runs, unless `workflow` is given. @default 'poll' */
  completion?: CompletionMode;
  /** The child workflow, built once and shared by every item. @default the built workflow of `completion` */
  workflow?: LocalWorkflow;
  /** The batch definition to run (tests only). @default local/built/batch.json with its ItemReaders replaced */
  definition?: BatchDefinition;
  /** Aborting stops the batch like StopExecution: every running item is stopped and its session ended. */
  signal?: AbortSignal;
  onItemStarted?: (item: BatchItem) => void;
  onItemFinished?: (item: BatchItem, result: BatchItemResult) => void;
  /** Progress lines of each item's run (the single run's lines, prefixed with the item's line). @default discarded */
  onProgress?: (item: BatchItem, line: string) => void;
}

/** What a `startExecution.sync:2` Task state is given (its Parameters, resolved). */
interface StartExecutionParameters {
  StateMachineArn: string;
  Name: string;
  Input: unknown;
}

type ExecutorEvent = { type: string; state?: { name: string } };

const ABORTED = { name: 'States.Aborted', cause: 'The batch was stopped before it finished.' };

let cachedMachine: { definition: BatchDefinition; machine: StateMachine } | undefined;

/**
 * The executor for a batch definition: one given is checked; the built one is not, as the built workflows are not:
 * its test checks it (test/local/batch-definition.test.ts).
 */
function machineFor(definition?: BatchDefinition): StateMachine {
  if (definition) return executorFor(definition, true);
  if (!cachedMachine) {
    const local = localBatchDefinition(builtBatchDefinition());
    cachedMachine = { definition: local, machine: executorFor(local, false) };
  }
  return cachedMachine.machine;
}

/** The index the child's name carries: `<batch id>-<index>-<redrive count>` (the batch id is hex). */
function indexOf(name: string): number {
  const index = Number(name.split('-')[1]);
  if (!Number.isInteger(index) || index < 0) throw new Error(`The child execution name ${JSON.stringify(name)} carries no item index`);
  return index;
}

export async function runLocalBatch(options: LocalBatchOptions): Promise<LocalBatchSummary> {
  const started = Date.now();
  const { items } = options;
  const total = items.length;
  const tolerated = options.toleratedFailurePercentage ?? 0;
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError(`concurrency must be a whole number >= 1, got ${options.concurrency}`);
  if (!(tolerated >= 0 && tolerated <= 100)) throw new RangeError(`toleratedFailurePercentage must be from 0 to 100, got ${tolerated}`);
  const format = options.format ?? 'json';
  if (!(ITEM_FORMATS as readonly string[]).includes(format)) throw new RangeError(`format must be one of ${ITEM_FORMATS.join(', ')}`);
  const child = options.workflow ?? builtWorkflow(options.completion ?? CompletionModes.poll);
  const machine = machineFor(options.definition);

  const results: Array<BatchItemResult | undefined> = new Array(total);
  let failed = 0;
  let childTransitions = 0;
  let lambdaInvocations = 0;
  // Once set, no item starts: the batch failed, or it is being stopped.
  let stopping = false;
  const runningItems = new Map<number, AbortController>();
  const runs = new Set<Promise<unknown>>();
  const stopItems = () => {
    stopping = true;
    for (const controller of runningItems.values()) controller.abort();
  };

  async function runItem(parameters: StartExecutionParameters): Promise<unknown> {
    const index = indexOf(parameters.Name);
    const item = items[index];
    if (stopping || !item) return { ExecutionArn: '', Output: null, Status: 'ABORTED' };
    // Step Functions bills one transition for each child execution a Distributed Map starts (this item's), besides
    // the states of that child ("Run item") and of the workflow execution it starts.
    childTransitions += 1;
    const controller = new AbortController();
    runningItems.set(index, controller);
    options.onItemStarted?.(item);
    const run = runLocalWorkflow({
      input: parameters.Input,
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      siteCredentials: options.siteCredentials,
      waitScale: options.waitScale,
      resultsDir: options.resultsDir,
      workflow: child,
      signal: controller.signal,
      onProgress: options.onProgress ? (line) => options.onProgress?.(item, line) : undefined,
    });
    runs.add(run);
    let summary: LocalRunSummary;
    try {
      summary = await run;
    } finally {
      runs.delete(run);
      runningItems.delete(index);
    }
    childTransitions += summary.stats.stateTransitions;
    lambdaInvocations += summary.stats.lambdaInvocations;
    const aborted = summary.status === 'FAILED' && summary.error?.name === ABORTED.name && controller.signal.aborted;
    const result: BatchItemResult =
      summary.status === 'SUCCEEDED'
        ? { item: item.vars, status: 'SUCCEEDED', output: summary.output }
        : { item: item.vars, status: aborted ? 'ABORTED' : 'FAILED', error: summary.error };
    results[index] = result;
    if (result.status === 'FAILED') failed++;
    options.onItemFinished?.(item, result);
    if (result.status === 'FAILED' && !withinTolerance(failed, total, tolerated)) {
      // As a Map Run does: fail the map, stop the running items, start no other.
      stopItems();
      const err = new Error(`${failed} of ${total} items failed; the batch tolerates ${tolerated}%.`);
      err.name = EXCEEDED_TOLERATED_FAILURES;
      throw err;
    }
    // A failed item within the tolerance is done for the map (Step Functions counts it and goes on).
    return { ExecutionArn: `arn:aws:states:local:000000000000:execution:webrun-sfn-local:${parameters.Name}`, Output: summary.output ?? null, Status: summary.status };
  }

  const taskResourceLocalHandlers = Object.fromEntries(Object.values(BatchStateNames.runItem).map((name) => [name, (input: unknown) => runItem(input as StartExecutionParameters) as never]));
  const input: LocalBatchInput = {
    items: { format, values: items.map((i) => i.vars) },
    template: options.template,
    maxConcurrency: options.concurrency,
    toleratedFailurePercentage: tolerated,
  };
  const executionName = `local-batch-${started}`;
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers },
    context: { Execution: { Id: `arn:aws:states:local:000000000000:execution:webrun-sfn-local-batch:${executionName}`, Name: executionName, RedriveCount: 0 } },
  });
  const stop = () => {
    stopItems();
    execution.abort();
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted) stop();

  let batchTransitions = 0;
  const following = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<ExecutorEvent>) {
      if (event.type === 'StateEntered' || event.type === 'StateRetried') batchTransitions++;
    }
  })();

  let status: LocalBatchSummary['status'];
  let error: LocalBatchSummary['error'];
  try {
    await execution.result;
    status = 'SUCCEEDED';
  } catch (err) {
    const e = err as { name?: string; message?: string; cause?: { name?: string; message?: string } };
    if (e?.name === 'ExecutionAbortedError' || options.signal?.aborted) {
      status = 'ABORTED';
      error = ABORTED;
    } else {
      status = 'FAILED';
      error = e?.name === 'ExecutionError' && e.cause ? { name: e.cause.name ?? 'Error', cause: e.cause.message ?? '' } : { name: e?.name ?? 'Error', cause: e?.message ?? String(err) };
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
  }
  // Items still running (the map failed or was stopped): each ends its own session before its run returns.
  stopItems();
  while (runs.size > 0) await Promise.allSettled([...runs]);
  await Promise.race([following.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);

  const final = items.map((item, i): BatchItemResult => results[i] ?? { item: item.vars, status: 'PENDING' });
  return {
    status,
    items: { total, succeeded: final.filter((r) => r.status === 'SUCCEEDED').length, failed: final.filter((r) => r.status === 'FAILED').length },
    results: final,
    stats: { stateTransitions: batchTransitions + childTransitions, lambdaInvocations, wallMs: Date.now() - started },
    ...(error ? { error } : {}),
  };
}
