/**
 * Session cleanup for executions that end without passing a terminate state: an execution timeout or a
 * StopExecution skip every Catch, and a few failures (States.Runtime, States.DataLimitExceeded) cannot be caught.
 * EventBridge hands the execution's status change to this code; it reads the execution history to find the
 * webrun session the workflow started and terminates it, unless the workflow already did.
 *
 * Pure logic over injected clients: the Lambda entry point (lambdas/cleanup-session.ts) binds it to the SFN SDK
 * client and the same Secrets Manager-backed webrun client factory as the workflow Lambdas.
 */
import { GetExecutionHistoryCommand, type HistoryEvent, type SFNClient } from '@aws-sdk/client-sfn';
import type { EventBridgeEvent } from 'aws-lambda';
import { CLEANUP_STATUSES, EXECUTION_STATUS_CHANGE, RETRY_IDEMPOTENT_ONLY_ERRORS, RETRY_SAFE_ERRORS, StateNames, TERMINATE_STATES } from './contract';
import { InvalidInput, isWebrunError } from './errors';
import type { Log } from './handlers';
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
  log: Log;
}

export type CleanupAction =
  /** The session was open and is now terminated. */
  | 'terminated'
  /** The API said the session was already gone (expired, or ended by a terminate call that raced this one). */
  | 'already-ended'
  /** The history shows a terminate state that succeeded: the workflow ended the session itself. */
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
  /** A terminate state (`Terminate session` or `Terminate session after failure`) ran to success. */
  endedByWorkflow: boolean;
}

const TASK_SUCCEEDED: ReadonlySet<string> = new Set(['LambdaFunctionSucceeded', 'TaskSucceeded']);
/** Step Functions' largest page; a Standard execution holds at most 25,000 events. */
const PAGE_SIZE = 1000;
const TRANSIENT: ReadonlySet<string> = new Set([...RETRY_SAFE_ERRORS, ...RETRY_IDEMPOTENT_ONLY_ERRORS]);

function sessionIdFrom(output: string | undefined): string | null {
  if (!output) return null;
  try {
    const value = (JSON.parse(output) as { sessionId?: unknown } | null)?.sessionId;
    return typeof value === 'string' && value !== '' ? value : null;
  } catch {
    return null;
  }
}

/**
 * Reads the history in order. A Task state counts as done only when its Lambda (or task) succeeded between its
 * TaskStateEntered and its TaskStateExited, so a state left through a Catch never counts, however the history
 * renders it.
 */
export function sessionTrail(events: Iterable<HistoryEvent>): SessionTrail {
  const trail: SessionTrail = { sessionId: null, endedByWorkflow: false };
  let succeeded = false;
  for (const event of events) {
    const type = event.type ?? '';
    if (type === 'TaskStateEntered') succeeded = false;
    else if (TASK_SUCCEEDED.has(type)) succeeded = true;
    else if (type === 'TaskStateExited' && succeeded) {
      const exited = event.stateExitedEventDetails;
      if (exited?.name === StateNames.start) trail.sessionId = sessionIdFrom(exited.output) ?? trail.sessionId;
      else if (exited?.name !== undefined && TERMINATE_STATES.includes(exited.name)) trail.endedByWorkflow = true;
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
    const { executionArn, status } = validEvent(event);
    const done = (action: CleanupAction, sessionId: string | null = null): CleanupOutcome => ({ executionArn, status, sessionId, action });
    if (!(CLEANUP_STATUSES as readonly string[]).includes(status)) {
      log.warn('execution status needs no cleanup', { executionArn, status });
      return done('ignored');
    }

    const events: HistoryEvent[] = [];
    for await (const e of history(executionArn)) events.push(e);
    const { sessionId, endedByWorkflow } = sessionTrail(events);
    if (!sessionId) {
      log.info('execution stopped before a session was started', { executionArn, status });
      return done('no-session');
    }
    if (endedByWorkflow) {
      log.info('session was already terminated by the workflow', { executionArn, status, sessionId });
      return done('ended-by-workflow', sessionId);
    }

    try {
      const client = await deps.client();
      const { terminated } = await client.terminateSession(sessionId);
      log.info(terminated ? 'session terminated by cleanup' : 'session was already ended', { executionArn, status, sessionId });
      return done(terminated ? 'terminated' : 'already-ended', sessionId);
    } catch (err) {
      const name = isWebrunError(err) ? err.name : ((err as { name?: string })?.name ?? 'Error');
      const fields = { executionArn, status, sessionId, error: name, message: (err as Error)?.message };
      if (TRANSIENT.has(name)) log.warn('session cleanup failed, will be retried', fields);
      else log.error('session cleanup failed; the session may still be open', fields);
      throw err;
    }
  };
}

export type CleanupHandler = ReturnType<typeof makeCleanup>;
