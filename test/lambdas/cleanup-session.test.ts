import * as path from 'node:path';
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetExecutionHistoryCommand, SFNClient, type HistoryEvent } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { build } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeCleanup, type CleanupDeps, type ExecutionStatus, type ExecutionStatusChangeEvent } from '../../lambdas/shared/cleanup';
import { ApiError, ServiceUnavailable, Unauthorized } from '../../lambdas/shared/errors';
import type { Log } from '../../lambdas/shared/handlers';
import { StateNames } from '../../lambdas/shared/contract';
import { memorySessionRecords, type SessionRecords } from '../../lambdas/shared/session-records';
import { lambdaContext } from '../helpers/lambda-context';

const sfnMock = mockClient(SFNClient);
const EXECUTION_ARN = 'arn:aws:states:us-east-1:123456789012:execution:WebrunWorkflow:run-42';
const SESSION_ID = 'sess-123';

function statusChange(status: ExecutionStatus, executionArn = EXECUTION_ARN): ExecutionStatusChangeEvent {
  return {
    id: 'evt-1',
    version: '0',
    account: '123456789012',
    time: '2025-01-01T00:00:00Z',
    region: 'us-east-1',
    resources: [executionArn],
    source: 'aws.states',
    'detail-type': 'Step Functions Execution Status Change',
    detail: {
      executionArn,
      stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:WebrunWorkflow',
      name: 'run-42',
      status,
      startDate: 1735689600000,
      stopDate: 1735693200000,
      input: null,
      output: null,
    },
  };
}

/** A history, event by event, in the order Step Functions writes it. */
class History {
  readonly events: HistoryEvent[] = [{ id: 1, type: 'ExecutionStarted', timestamp: new Date(0) }];
  private add(type: string, extra: Partial<HistoryEvent> = {}): this {
    this.events.push({ id: this.events.length + 1, previousEventId: this.events.length, type, timestamp: new Date(0), ...extra } as HistoryEvent);
    return this;
  }
  /** A Task state whose Lambda succeeded with `output`. */
  taskSucceeded(name: string, output: unknown): this {
    return this.add('TaskStateEntered', { stateEnteredEventDetails: { name, input: '{}' } })
      .add('LambdaFunctionScheduled')
      .add('LambdaFunctionStarted')
      .add('LambdaFunctionSucceeded', { lambdaFunctionSucceededEventDetails: { output: JSON.stringify(output) } })
      .add('TaskStateExited', { stateExitedEventDetails: { name, output: JSON.stringify(output) } });
  }
  /** A Task state whose Lambda failed and was caught (rendered with an exit carrying the error, to be strict). */
  taskCaught(name: string): this {
    const error = { Error: 'Webrun.ApiError', Cause: 'boom' };
    return this.add('TaskStateEntered', { stateEnteredEventDetails: { name, input: '{}' } })
      .add('LambdaFunctionScheduled')
      .add('LambdaFunctionStarted')
      .add('LambdaFunctionFailed', { lambdaFunctionFailedEventDetails: { error: error.Error, cause: error.Cause } })
      .add('TaskStateExited', { stateExitedEventDetails: { name, output: JSON.stringify({ run: { sessionId: SESSION_ID }, failure: error }) } });
  }
  /** A Task state still running its Lambda when the execution stopped. */
  taskInterrupted(name: string): this {
    return this.add('TaskStateEntered', { stateEnteredEventDetails: { name, input: '{}' } }).add('LambdaFunctionScheduled').add('LambdaFunctionStarted');
  }
  end(type: 'ExecutionAborted' | 'ExecutionTimedOut' | 'ExecutionFailed'): HistoryEvent[] {
    return this.add(type).events;
  }
}

const started = () => new History().taskSucceeded(StateNames.start, { run: { sessionId: SESSION_ID, tasks: [{ taskDetails: 'x' }], taskCount: 1 }, loop: { index: 0, status: 'ready', results: [] } });
/** The failure step's output: its report says whether the session's end was confirmed. */
const reported = (sessionEnded: boolean) => ({ report: { error: 'Webrun.TaskFailed', cause: JSON.stringify({ message: 'm', sessionId: SESSION_ID, taskIndex: 0, completed: [], sessionEnded }) } });

function pages(events: HistoryEvent[], size: number) {
  const out: Array<{ events: HistoryEvent[]; nextToken?: string }> = [];
  for (let i = 0; i < events.length; i += size) out.push({ events: events.slice(i, i + size), nextToken: i + size < events.length ? `page-${i + size}` : undefined });
  return out;
}

function serveHistory(events: HistoryEvent[], pageSize = 1000) {
  const byToken = new Map(pages(events, pageSize).map((page, i, all) => [i === 0 ? undefined : all[i - 1].nextToken, page]));
  sfnMock.on(GetExecutionHistoryCommand).callsFake((input: { nextToken?: string }) => {
    const page = byToken.get(input.nextToken);
    if (!page) throw new Error(`unexpected nextToken ${input.nextToken}`);
    return page;
  });
}

function setup(terminate: (sessionId: string) => Promise<{ terminated: boolean }> = async () => ({ terminated: true }), extra: Partial<CleanupDeps> = {}) {
  const terminateSession = vi.fn(terminate);
  const client = vi.fn(async () => ({ terminateSession }));
  const log = { info: vi.fn(), warn: vi.fn(), error: vi.fn() } satisfies Log;
  const sessions: SessionRecords = extra.sessions ?? memorySessionRecords();
  const deps: CleanupDeps = { sfn: new SFNClient({ region: 'us-east-1' }), client, log, sessions, ...extra };
  return { cleanup: makeCleanup(deps), terminateSession, client, log, sessions };
}

beforeEach(() => {
  sfnMock.reset();
});

describe('cleanupSession', () => {
  it('finds the sessionId across history pages and terminates the session once', async () => {
    const events = started().taskSucceeded(StateNames.send, { status: 'pending' }).taskInterrupted(StateNames.poll).end('ExecutionTimedOut');
    serveHistory(events, 3);
    const { cleanup, terminateSession, log } = setup();

    const outcome = await cleanup(statusChange('TIMED_OUT'));

    expect(outcome).toEqual({ executionArn: EXECUTION_ARN, status: 'TIMED_OUT', sessionId: SESSION_ID, action: 'terminated' });
    expect(terminateSession).toHaveBeenCalledTimes(1);
    expect(terminateSession).toHaveBeenCalledWith(SESSION_ID);
    expect(log.info).toHaveBeenCalledWith('session terminated by cleanup', expect.objectContaining({ sessionId: SESSION_ID, executionArn: EXECUTION_ARN }));
  });

  it('reads the history of the execution named in the event, in order, with execution data, page by page', async () => {
    const events = started().end('ExecutionAborted');
    serveHistory(events, 4);
    const { cleanup } = setup();

    await cleanup(statusChange('ABORTED'));

    const inputs = sfnMock.commandCalls(GetExecutionHistoryCommand).map((call) => call.args[0].input);
    expect(inputs).toHaveLength(Math.ceil(events.length / 4));
    expect(inputs[0]).toEqual({ executionArn: EXECUTION_ARN, reverseOrder: false, includeExecutionData: true, maxResults: 1000, nextToken: undefined });
    expect(inputs.slice(1).map((i) => i.nextToken)).toEqual(['page-4', 'page-8'].slice(0, inputs.length - 1));
    for (const input of inputs) expect(input).toMatchObject({ executionArn: EXECUTION_ARN, reverseOrder: false });
  });

  it('does nothing when the execution stopped before a session was started', async () => {
    serveHistory(new History().taskCaught(StateNames.start).taskSucceeded(StateNames.reportStartFailure, { sessionId: null }).end('ExecutionFailed'));
    const { cleanup, terminateSession, client } = setup();

    await expect(cleanup(statusChange('FAILED'))).resolves.toMatchObject({ sessionId: null, action: 'no-session' });
    expect(client).not.toHaveBeenCalled();
    expect(terminateSession).not.toHaveBeenCalled();
  });

  it('stopped while starting the session: asks to be retried while start-session may still answer, then gives up', async () => {
    serveHistory(new History().taskInterrupted(StateNames.start).end('ExecutionAborted'));
    const stopDate = statusChange('ABORTED').detail.stopDate!;
    let now = stopDate + 10_000;
    const { cleanup, terminateSession } = setup(undefined, { now: () => now, startGraceMs: 150_000 });

    await expect(cleanup(statusChange('ABORTED'))).rejects.toMatchObject({ name: 'SessionRecordPending' });
    now = stopDate + 200_000;
    await expect(cleanup(statusChange('ABORTED'))).resolves.toMatchObject({ action: 'no-session' });
    expect(terminateSession).not.toHaveBeenCalled();
  });

  it('stopped while starting the session, whose start then recorded the session: the retried event terminates it', async () => {
    // The history ends LambdaFunctionStarted > ExecutionAborted: no sessionId in it. The Lambda ran on and wrote the record.
    serveHistory(new History().taskInterrupted(StateNames.start).end('ExecutionAborted'));
    const { cleanup, terminateSession, sessions } = setup(undefined, { now: () => statusChange('ABORTED').detail.stopDate! + 5_000 });
    await expect(cleanup(statusChange('ABORTED'))).rejects.toMatchObject({ name: 'SessionRecordPending' });
    await sessions.started(EXECUTION_ARN, SESSION_ID);

    await expect(cleanup(statusChange('ABORTED'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'terminated' });
    expect(terminateSession).toHaveBeenCalledWith(SESSION_ID);
  });

  it('reads the session record first and never pages through the history when it has one', async () => {
    const { cleanup, terminateSession, sessions } = setup();
    await sessions.started(EXECUTION_ARN, SESSION_ID);

    await expect(cleanup(statusChange('ABORTED'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'terminated' });
    expect(sfnMock.commandCalls(GetExecutionHistoryCommand)).toHaveLength(0);
    expect(terminateSession).toHaveBeenCalledTimes(1);
    expect((await sessions.get(EXECUTION_ARN))?.endedAt).toEqual(expect.any(Number));
  });

  it('a second delivery of the same event is a no-op: one terminate in all', async () => {
    const { cleanup, terminateSession, sessions } = setup();
    await sessions.started(EXECUTION_ARN, SESSION_ID);

    await cleanup(statusChange('TIMED_OUT'));
    await expect(cleanup(statusChange('TIMED_OUT'))).resolves.toMatchObject({ action: 'ended-by-workflow' });
    expect(terminateSession).toHaveBeenCalledTimes(1);
  });

  it('a second delivery is a no-op also when the session was found through the history', async () => {
    serveHistory(started().end('ExecutionTimedOut'));
    const { cleanup, terminateSession } = setup();

    await cleanup(statusChange('TIMED_OUT'));
    await cleanup(statusChange('TIMED_OUT'));
    expect(terminateSession).toHaveBeenCalledTimes(1);
  });

  it('a record the workflow marked ended needs nothing', async () => {
    const { cleanup, terminateSession, client, sessions } = setup();
    await sessions.started(EXECUTION_ARN, SESSION_ID);
    await sessions.ended(EXECUTION_ARN, SESSION_ID);

    await expect(cleanup(statusChange('FAILED'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'ended-by-workflow' });
    expect(client).not.toHaveBeenCalled();
    expect(terminateSession).not.toHaveBeenCalled();
  });

  it('terminates when the failure step reported that it could not end the session', async () => {
    serveHistory(started().taskCaught(StateNames.send).taskSucceeded(StateNames.terminateAfterFailure, reported(false)).end('ExecutionFailed'));
    const { cleanup, terminateSession } = setup();

    await expect(cleanup(statusChange('FAILED'))).resolves.toMatchObject({ action: 'terminated' });
    expect(terminateSession).toHaveBeenCalledWith(SESSION_ID);
  });

  it.each([
    [StateNames.terminate, { sessionId: SESSION_ID, tasks: [] }],
    [StateNames.terminateAfterFailure, reported(true)],
  ])('does nothing when "%s" already succeeded', async (terminateState, output) => {
    // e.g. a States.DataLimitExceeded after the session was ended
    serveHistory(started().taskSucceeded(terminateState, output).end('ExecutionFailed'));
    const { cleanup, terminateSession, client, log } = setup();

    await expect(cleanup(statusChange('FAILED'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'ended-by-workflow' });
    expect(client).not.toHaveBeenCalled();
    expect(terminateSession).not.toHaveBeenCalled();
    expect(log.info).toHaveBeenCalledWith('session was already terminated by the workflow', expect.objectContaining({ sessionId: SESSION_ID }));
  });

  it('terminates when a terminate state was entered but did not succeed', async () => {
    // Stopped while "Terminate session" ran, after "Terminate session after failure" was caught.
    serveHistory(started().taskCaught(StateNames.terminateAfterFailure).taskInterrupted(StateNames.terminate).end('ExecutionAborted'));
    const { cleanup, terminateSession } = setup();

    await expect(cleanup(statusChange('ABORTED'))).resolves.toMatchObject({ action: 'terminated' });
    expect(terminateSession).toHaveBeenCalledTimes(1);
  });

  it('logs a session that had already ended once, and does not throw', async () => {
    serveHistory(started().end('ExecutionTimedOut'));
    const { cleanup, terminateSession, log } = setup(async () => ({ terminated: false }));

    await expect(cleanup(statusChange('TIMED_OUT'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'already-ended' });
    expect(terminateSession).toHaveBeenCalledTimes(1);
    const alreadyEnded = log.info.mock.calls.filter(([message]) => message === 'session was already ended');
    expect(alreadyEnded).toHaveLength(1);
    expect(alreadyEnded[0][1]).toMatchObject({ sessionId: SESSION_ID, executionArn: EXECUTION_ARN });
    expect(log.error).not.toHaveBeenCalled();
    expect(log.warn).not.toHaveBeenCalled();
  });

  it.each([
    ['ServiceUnavailable', new ServiceUnavailable('start/send-message could not reach the webrun API (ECONNREFUSED).')],
    ['ApiError', new ApiError('terminate was refused with HTTP 502.', { status: 502 })],
  ])('throws a transient %s so Lambda retries the event', async (_name, error) => {
    serveHistory(started().end('ExecutionAborted'));
    const { cleanup, log } = setup(async () => {
      throw error;
    });

    await expect(cleanup(statusChange('ABORTED'))).rejects.toBe(error);
    expect(log.warn).toHaveBeenCalledWith('session cleanup failed, will be retried', expect.objectContaining({ sessionId: SESSION_ID, error: error.name }));
  });

  it('throws a final error too, logged as a session that may still be open, so the event reaches the dead-letter queue', async () => {
    serveHistory(started().end('ExecutionAborted'));
    const error = new Unauthorized('terminate was refused with HTTP 401 INVALID_API_KEY.');
    const { cleanup, log } = setup(async () => {
      throw error;
    });

    await expect(cleanup(statusChange('ABORTED'))).rejects.toBe(error);
    expect(log.error).toHaveBeenCalledWith('session cleanup failed; the session may still be open', expect.objectContaining({ sessionId: SESSION_ID }));
  });

  it('throws when the history cannot be read, so Lambda retries the event', async () => {
    sfnMock.on(GetExecutionHistoryCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const { cleanup, terminateSession } = setup();

    await expect(cleanup(statusChange('FAILED'))).rejects.toThrow('Rate exceeded');
    expect(terminateSession).not.toHaveBeenCalled();
  });

  it('ignores statuses that need no cleanup', async () => {
    const { cleanup, client } = setup();

    await expect(cleanup(statusChange('SUCCEEDED'))).resolves.toMatchObject({ action: 'ignored' });
    expect(sfnMock.commandCalls(GetExecutionHistoryCommand)).toHaveLength(0);
    expect(client).not.toHaveBeenCalled();
  });

  it('rejects an event that is not an execution status change', async () => {
    const { cleanup } = setup();
    await expect(cleanup({ detail: {} } as unknown as ExecutionStatusChangeEvent)).rejects.toThrow(/executionArn/);
  });
});

describe('cleanupSession, the Lambda handler', () => {
  const secretsMock = mockClient(SecretsManagerClient);
  const dynamoMock = mockClient(DynamoDBClient);
  const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun-AbCdEf';

  beforeEach(() => {
    secretsMock.reset();
    dynamoMock.reset();
    vi.resetModules();
    vi.stubEnv('WEBRUN_SECRET_ARN', SECRET_ARN);
    vi.stubEnv('WEBRUN_BASE_URL', 'https://webrun.test');
    vi.stubEnv('WEBRUN_SESSION_TABLE', 'Sessions');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
  });

  afterEach(() => {
    vi.unstubAllEnvs();
    vi.unstubAllGlobals();
  });

  it('terminates the session with the API key from the workflow secret, and marks its record in the table', async () => {
    secretsMock.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: 'key-from-secret' }) });
    dynamoMock.on(GetItemCommand).resolves({});
    dynamoMock.on(UpdateItemCommand).resolves({});
    serveHistory(started().end('ExecutionTimedOut'));
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ success: true }), { status: 200, headers: { 'content-type': 'application/json' } }));
    vi.stubGlobal('fetch', fetchMock);

    const { cleanupSession: handler } = await import('../../lambdas/index');
    await expect(handler(statusChange('TIMED_OUT'), lambdaContext())).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'terminated' });

    expect(secretsMock.commandCalls(GetSecretValueCommand)[0].args[0].input).toEqual({ SecretId: SECRET_ARN });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('https://webrun.test/start/send-message');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer key-from-secret');
    expect(JSON.parse(String(init.body))).toEqual({ sessionId: SESSION_ID, message: { actionType: 'state', newState: 'terminate' } });
    expect(dynamoMock.commandCalls(GetItemCommand)[0].args[0].input).toMatchObject({ TableName: 'Sessions', Key: { executionArn: { S: EXECUTION_ARN } }, ConsistentRead: true });
    expect(dynamoMock.commandCalls(UpdateItemCommand)[0].args[0].input).toMatchObject({ TableName: 'Sessions', Key: { executionArn: { S: EXECUTION_ARN } }, ConditionExpression: 'attribute_not_exists(endedAt)' });
  });

  it('bundles without aws-cdk-lib (state names come from the dependency-free contract)', async () => {
    const result = await build({
      entryPoints: [path.join(__dirname, '..', '..', 'lambdas', 'index.ts')],
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      target: 'node22',
      external: ['@aws-sdk/*'],
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((file) => file.includes('aws-cdk-lib') || file.includes('/lib/workflow-definition'))).toEqual([]);
  });
});
