/**
 * Session cleanup for executions that end without passing a terminate state: an execution timeout or a
 * StopExecution skip every Catch, and a few failures (States.Runtime, States.DataLimitExceeded) cannot be caught.
 * EventBridge hands the execution's status change to this code. It reads the execution's session record (written
 * by Start session the moment start-session answered) and terminates the session unless it was ended; the history
 * is read only for executions without a record. A repeated event finds the record ended and does nothing.
 *
 * Pure logic over injected clients: the Lambda handler `cleanupSession` (lambdas/index.ts) binds it to the SFN SDK
 * client and the same Secrets Manager-backed webrun client factory as the workflow Lambdas.
 */
import { GetExecutionHistoryCommand, type HistoryEvent, type SFNClient } from '@aws-sdk/client-sfn';
import type { EventBridgeEvent } from 'aws-lambda';
import { CLEANUP_STATUSES, EXECUTION_STATUS_CHANGE, RETRY_IDEMPOTENT_ONLY_ERRORS, RETRY_SAFE_ERRORS, StateNames, TERMINATE_STATES } from './contract';
import { InvalidInput, isWebrunError } from './errors';
import type { Log } from './handlers';
import type { SessionRecords } from './session-records';
import type { WebrunClient } from './webrun-client';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';

/** `detail` of an EventBridge "Step Functions Execution Status Change" event. */
export interface ExecutionStatusChangeDetail {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate: number | null;
  input: string | null;
  output: string | null;
  error?: string | null;
  cause?: string | null;
  [key: string]: unknown;
}

export type ExecutionStatusChangeEvent = EventBridgeEvent<typeof EXECUTION_STATUS_CHANGE, ExecutionStatusChangeDetail>;

export interface CleanupDeps {
  sfn: Pick<SFNClient, 'send'>;
  /** The webrun client factory (in Lambda: `lambdaDeps().client`, the API key from Secrets Manager). */
  client: () => Promise<Pick<WebrunClient, 'terminateSession'>>;
  sessions: SessionRecords;
  log: Log;
  /**
   * How long after an execution stopped its Start session may still be waiting for start-session (its Lambda runs
   * on after the stop): within it, no record and a start in flight means "look again later". @default 150000
   */
  startGraceMs?: number;
  now?: () => number;
}

/**
 * Thrown while a stopped execution's Start session may still be waiting for start-session: Lambda retries the event
 * (after about 1 and 3 minutes), by when the session, if one was created, is recorded.
 */
export class SessionRecordPending extends Error {
  override readonly name = 'SessionRecordPending';
}

export type CleanupAction =
  /** The session was open and is now terminated. */
  | 'terminated'
  /** The API said the session was already gone (expired, or ended by a terminate call that raced this one). */
  | 'already-ended'
  /** The record (or the history) shows the session was ended already: nothing to do, also for a repeated event. */
  | 'ended-by-workflow'
  /** The execution stopped before `Start session` produced a session. */
  | 'no-session'
  /** Not a status this cleanup handles (the rule should not have sent it). */
  | 'ignored';

export interface CleanupOutcome {
  executionArn: string;
  status: ExecutionStatus;
  sessionId: string | null;
  action: CleanupAction;
}

/** What the history says about the session. */
export interface SessionTrail {
  sessionId: string | null;
  /** A terminate state ended the session (the failure step counts only when its report says the end was confirmed). */
  endedByWorkflow: boolean;
  /** The history stops inside Start session: its start-session call may still answer. */
  startInFlight: boolean;
}

const TASK_SUCCEEDED: ReadonlySet<string> = new Set(['LambdaFunctionSucceeded', 'TaskSucceeded']);
/** Step Functions' largest page; a Standard execution holds at most 25,000 events. */
const PAGE_SIZE = 1000;
const TRANSIENT: ReadonlySet<string> = new Set([...RETRY_SAFE_ERRORS, ...RETRY_IDEMPOTENT_ONLY_ERRORS]);

function parse(output: string | undefined): Record<string, unknown> | null {
  if (!output) return null;
  try {
    const value = JSON.parse(output) as unknown;
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Start session's output: `{ run: { sessionId }, loop }` (before the run/loop state: `{ sessionId, ... }`). */
function sessionIdFrom(output: string | undefined): string | null {
  const state = parse(output);
  const value = (state?.run as { sessionId?: unknown } | undefined)?.sessionId ?? state?.sessionId;
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Whether a terminate state's output says the session ended: the failure step's report carries `sessionEnded`. */
function endedIn(output: string | undefined): boolean {
  const report = parse(output)?.report as { cause?: unknown } | undefined;
  if (typeof report?.cause !== 'string') return true;
  return (parse(report.cause) as { sessionEnded?: unknown } | null)?.sessionEnded !== false;
}

/**
 * Reads the history in order. A Task state counts as done only when its Lambda (or task) succeeded between its
 * TaskStateEntered and its TaskStateExited, so a state left through a Catch never counts, however the history
 * renders it.
 */
export function sessionTrail(events: Iterable<HistoryEvent>): SessionTrail {
  const trail: SessionTrail = { sessionId: null, endedByWorkflow: false, startInFlight: false };
  let succeeded = false;
  for (const event of events) {
    const type = event.type ?? '';
    if (type === 'TaskStateEntered') {
      succeeded = false;
      if (event.stateEnteredEventDetails?.name === StateNames.start) trail.startInFlight = true;
    } else if (TASK_SUCCEEDED.has(type)) succeeded = true;
    else if (type === 'TaskStateExited') {
      const exited = event.stateExitedEventDetails;
      if (exited?.name === StateNames.start) trail.startInFlight = false;
      if (!succeeded) continue;
      if (exited?.name === StateNames.start) trail.sessionId = sessionIdFrom(exited.output) ?? trail.sessionId;
      else if (exited?.name !== undefined && TERMINATE_STATES.includes(exited.name) && endedIn(exited.output)) trail.endedByWorkflow = true;
    }
  }
  return trail;
}

function validEvent(event: unknown): ExecutionStatusChangeDetail {
  const detail = (event as Partial<ExecutionStatusChangeEvent> | null)?.detail;
  if (!detail || typeof detail.executionArn !== 'string' || detail.executionArn === '') {
    throw new InvalidInput('cleanup event.detail.executionArn', `must be a non-empty string (expected an EventBridge "${EXECUTION_STATUS_CHANGE}" event)`);
  }
  return detail;
}

export function makeCleanup(deps: CleanupDeps) {
  const { log } = deps;
  const now = deps.now ?? Date.now;
  const startGraceMs = deps.startGraceMs ?? 150_000;

  async function* history(executionArn: string): AsyncGenerator<HistoryEvent> {
    let nextToken: string | undefined;
    do {
      const page = await deps.sfn.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: false, includeExecutionData: true, maxResults: PAGE_SIZE, nextToken }));
      yield* page.events ?? [];
      nextToken = page.nextToken;
    } while (nextToken);
  }

  /**
   * Terminates the session of an execution that ended ABORTED, TIMED_OUT or FAILED, unless the workflow ended it.
   * Any error is thrown, so Lambda's async retries run and the event finally lands in the dead-letter queue,
   * where an operator sees which session may still be open.
   */
  return async function cleanupSession(event: ExecutionStatusChangeEvent): Promise<CleanupOutcome> {
    const detail = validEvent(event);
    const { executionArn, status } = detail;
    const done = (action: CleanupAction, sessionId: string | null = null): CleanupOutcome => ({ executionArn, status, sessionId, action });
    if (!(CLEANUP_STATUSES as readonly string[]).includes(status)) {
      log.warn('execution status needs no cleanup', { executionArn, status });
      return done('ignored');
    }

    const record = await deps.sessions.get(executionArn);
    if (record?.endedAt !== undefined) {
      log.info('session was already ended', { executionArn, status, sessionId: record.sessionId });
      return done('ended-by-workflow', record.sessionId);
    }
    let sessionId = record?.sessionId ?? null;
    if (!sessionId) {
      // No record: an execution started before records existed, or one stopped while start-session was in flight.
      const events: HistoryEvent[] = [];
      for await (const e of history(executionArn)) events.push(e);
      const trail = sessionTrail(events);
      if (trail.endedByWorkflow) {
        log.info('session was already terminated by the workflow', { executionArn, status, sessionId: trail.sessionId });
        return done('ended-by-workflow', trail.sessionId);
      }
      sessionId = trail.sessionId;
      if (!sessionId) {
        const stoppedAt = typeof detail.stopDate === 'number' ? detail.stopDate : now();
        if (trail.startInFlight && now() - stoppedAt < startGraceMs) {
          log.warn('start-session may still answer; the event will be retried', { executionArn, status });
          throw new SessionRecordPending(`The execution stopped while Start session was running; its session record is looked for again later.`);
        }
        log.info('execution stopped before a session was started', { executionArn, status });
        return done('no-session');
      }
    }
    return endSession(executionArn, status, sessionId);
  };

  async function endSession(executionArn: string, status: ExecutionStatus, sessionId: string): Promise<CleanupOutcome> {
    try {
      const action = await endRecordedSession(deps, executionArn, sessionId);
      return { executionArn, status, sessionId, action };
    } catch (err) {
      const name = isWebrunError(err) ? err.name : ((err as { name?: string })?.name ?? 'Error');
      const fields = { executionArn, status, sessionId, error: name, message: (err as Error)?.message };
      if (TRANSIENT.has(name)) log.warn('session cleanup failed, will be retried', fields);
      else log.error('session cleanup failed; the session may still be open', fields);
      throw err;
    }
  }
}

/**
 * Terminates an execution's session and marks its record ended, so a repeated event (or a second cleanup) finds
 * nothing to do. The deployed cleanup and the local runner's end both come here.
 */
export async function endRecordedSession(
  deps: Pick<CleanupDeps, 'client' | 'sessions' | 'log'>,
  executionArn: string,
  sessionId: string,
): Promise<'terminated' | 'already-ended'> {
  const client = await deps.client();
  const { terminated } = await client.terminateSession(sessionId);
  deps.log.info(terminated ? 'session terminated by cleanup' : 'session was already ended', { executionArn, sessionId });
  await deps.sessions.ended(executionArn, sessionId);
  return terminated ? 'terminated' : 'already-ended';
}

export type CleanupHandler = ReturnType<typeof makeCleanup>;
