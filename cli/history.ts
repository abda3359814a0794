/**
 * A deployed execution's history as the local runner's state events, so `follow` shows the very progress lines
 * of `npm start` (local/progress.ts). Step Functions has no "retried" or "caught" event: a failure followed by a
 * new scheduling of the same Task is a retry, and a failure followed by the state's exit is a catch.
 */
import { GetExecutionHistoryCommand, type HistoryEvent, type SFNClient } from '@aws-sdk/client-sfn';
import { runSoFar, type RunSoFar, type StateEvent } from '../local/progress';

/** Events that end an execution. */
export const TERMINAL_EVENTS = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The error and cause of any failure-type history event, whichever details field carries them. */
function failureOf(e: HistoryEvent): { error?: string; cause?: string } | undefined {
  const d = e.taskFailedEventDetails ?? e.taskTimedOutEventDetails ?? e.taskStartFailedEventDetails ?? e.taskSubmitFailedEventDetails
    ?? e.lambdaFunctionFailedEventDetails ?? e.lambdaFunctionTimedOutEventDetails ?? e.lambdaFunctionStartFailedEventDetails
    ?? e.lambdaFunctionScheduleFailedEventDetails ?? e.activityFailedEventDetails ?? e.activityTimedOutEventDetails
    ?? e.activityScheduleFailedEventDetails ?? e.evaluationFailedEventDetails;
  if (!d) return undefined;
  return { error: d.error, cause: d.cause };
}

const RETRY_STARTS = new Set(['TaskScheduled', 'LambdaFunctionScheduled', 'ActivityScheduled']);

/** A state event, or a note that the history holds no input/output for this step (restricted execution data). */
export type Translated = { event: StateEvent; dataMissing: boolean; stateType?: string };

/** Turns history events, in order, into state events. Keeps the little state it needs across polls. */
export class HistoryTranslator {
  private current?: string;
  private pendingFailure?: { error?: string; cause?: string };

  translate(e: HistoryEvent): Translated[] {
    const type = e.type ?? '';
    const at = e.timestamp ? new Date(e.timestamp).getTime() : Date.now();
    if (type.endsWith('StateEntered') && e.stateEnteredEventDetails) {
      const d = e.stateEnteredEventDetails;
      this.current = d.name;
      this.pendingFailure = undefined;
      const input = parseJson(d.input);
      return [{ event: { type: 'entered', state: d.name ?? '?', at, input }, dataMissing: input === undefined, stateType: type.slice(0, -'StateEntered'.length) }];
    }
    if (type.endsWith('StateExited') && e.stateExitedEventDetails) {
      const d = e.stateExitedEventDetails;
      const state = d.name ?? this.current ?? '?';
      this.current = undefined;
      if (this.pendingFailure) {
        const { error } = this.pendingFailure;
        this.pendingFailure = undefined;
        return [{ event: { type: 'caught', state, at, error }, dataMissing: false }];
      }
      const output = parseJson(d.output);
      return [{ event: { type: 'exited', state, at, output }, dataMissing: output === undefined, stateType: type.slice(0, -'StateExited'.length) }];
    }
    const failure = failureOf(e);
    if (failure && this.current !== undefined && !TERMINAL_EVENTS.has(type)) {
      this.pendingFailure = failure;
      return [{ event: { type: 'failed', state: this.current, at, error: failure.error, cause: failure.cause }, dataMissing: false }];
    }
    if (RETRY_STARTS.has(type) && this.pendingFailure && this.current !== undefined) {
      const { error } = this.pendingFailure;
      this.pendingFailure = undefined;
      return [{ event: { type: 'retried', state: this.current, at, error }, dataMissing: false }];
    }
    return [];
  }
}

/**
 * The events after `afterId`, oldest first. Reads the history newest-first and stops at the first event already
 * seen, so a long poll loop costs one page per poll, not the whole history each time.
 */
export async function newHistoryEvents(client: SFNClient, executionArn: string, afterId: number, pageSize = 200): Promise<HistoryEvent[]> {
  const fresh: HistoryEvent[] = [];
  let nextToken: string | undefined;
  let reachedSeen = false;
  do {
    const page = await client.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: pageSize, nextToken, includeExecutionData: true }));
    for (const event of page.events ?? []) {
      if ((event.id ?? 0) <= afterId) {
        reachedSeen = true;
        break;
      }
      fresh.push(event);
    }
    nextToken = page.nextToken;
  } while (!reachedSeen && nextToken);
  return fresh.reverse();
}

/**
 * The first value `pick` finds in an execution's history, newest event first, reading page by page (with execution
 * data) and stopping there; undefined when no event yields one.
 */
async function newestInHistory<T>(client: SFNClient, executionArn: string, pick: (e: HistoryEvent) => T | undefined): Promise<T | undefined> {
  let nextToken: string | undefined;
  do {
    const page = await client.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 1000, nextToken, includeExecutionData: true }));
    for (const e of page.events ?? []) {
      const found = pick(e);
      if (found !== undefined) return found;
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return undefined;
}

/**
 * The run's standing in the newest state data of an execution's history (its session, the task it was at, the
 * results it completed); undefined when no state data holds it (the run never got that far, or the execution data
 * is restricted).
 */
export function lastRunSoFar(client: SFNClient, executionArn: string): Promise<RunSoFar | undefined> {
  return newestInHistory(client, executionArn, (e) => runSoFar(parseJson(e.stateExitedEventDetails?.output ?? e.stateEnteredEventDetails?.input)));
}

/**
 * The execution a Distributed Map iteration started (its "Run item" state, `startExecution.sync:2`), from the
 * StartExecution answer the iteration's history keeps in TaskSubmitted; undefined when it started none.
 */
export function startedExecutionOf(client: SFNClient, iterationArn: string): Promise<string | undefined> {
  return newestInHistory(client, iterationArn, (e) => {
    const started = parseJson(e.taskSubmittedEventDetails?.output) as { ExecutionArn?: unknown } | undefined;
    return typeof started?.ExecutionArn === 'string' ? started.ExecutionArn : undefined;
  });
}
