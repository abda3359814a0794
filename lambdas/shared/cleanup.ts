/**
 * Session cleanup for executions that end without passing a terminate state: an execution timeout or a
 * StopExecution skip every Catch, and a few failures (States.Runtime, States.DataLimitExceeded) cannot be caught.
 * EventBridge hands the execution's status change to this code. It reads the execution's session record (written
 * by Start session the moment start-session answered) and terminates the session unless it was ended. Without a
 * recorded session it marks the execution stopped in the same conditional write, so a start-session still in flight
 * cannot record its session and ends it itself (./session-records.ts). It never reads the execution's history: one
 * read and at most one write per execution, however many stop at once (a stopped batch's children). A repeated
 * event finds the record ended and does nothing.
 *
 * Pure logic over injected clients: the Lambda handler `cleanupSession` (lambdas/index.ts) binds it to the session
 * table and the same Secrets Manager-backed webrun client factory as the workflow Lambdas.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import { CLEANUP_STATUSES, EXECUTION_STATUS_CHANGE, IDEMPOTENT_RETRY_ERRORS, WorkflowMetricNames } from './contract';
import { InvalidInput, isWebrunError } from './errors';
import type { Log } from './handlers';
import { noMetrics, type WorkflowMetrics } from './metrics';
import type { SessionRecords } from './session-records';
import type { WebrunClient } from './webrun-client';

const TRANSIENT = IDEMPOTENT_RETRY_ERRORS;

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
  /** The webrun client factory (in Lambda: `lambdaDeps().client`, the API key from Secrets Manager). */
  client: () => Promise<Pick<WebrunClient, 'terminateSession'>>;
  sessions: SessionRecords;
  log: Log;
  /** `SessionsTerminated` counts the sessions this ends, as it counts the workflow's (Powertools in Lambda). @default none (the local runner) */
  metrics?: WorkflowMetrics;
}

export type CleanupAction =
  /** The session was open and is now terminated. */
  | 'terminated'
  /** The API said the session was already gone (expired, or ended by a terminate call that raced this one). */
  | 'already-ended'
  /** The record shows the session was ended already: nothing to do, also for a repeated event. */
  | 'ended-by-workflow'
  /** No session was recorded: none was started, or a start still in flight will end its own (it finds the execution stopped). */
  | 'no-session'
  /** Not a status this cleanup handles (the rule should not have sent it). */
  | 'ignored';

export interface CleanupOutcome {
  executionArn: string;
  status: ExecutionStatus;
  sessionId: string | null;
  action: CleanupAction;
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

    const record = (await deps.sessions.get(executionArn)) ?? (await deps.sessions.stoppedUnlessStarted(executionArn));
    if (!record) {
      log.info('no session was recorded; the execution is marked stopped, so a start still in flight ends its own', { executionArn, status });
      return done('no-session');
    }
    if (record.endedAt !== undefined) {
      log.info('session was already ended', { executionArn, status, sessionId: record.sessionId });
      return done('ended-by-workflow', record.sessionId);
    }
    return endSession(executionArn, status, record.sessionId);
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
  deps: Pick<CleanupDeps, 'client' | 'sessions' | 'log' | 'metrics'>,
  executionArn: string,
  sessionId: string,
): Promise<'terminated' | 'already-ended'> {
  const client = await deps.client();
  const { terminated } = await client.terminateSession(sessionId);
  if (terminated) (deps.metrics ?? noMetrics).add(WorkflowMetricNames.sessionsTerminated, 1);
  deps.log.info(terminated ? 'session terminated by cleanup' : 'session was already ended', { executionArn, sessionId });
  await deps.sessions.ended(executionArn, sessionId);
  return terminated ? 'terminated' : 'already-ended';
}

export type CleanupHandler = ReturnType<typeof makeCleanup>;
