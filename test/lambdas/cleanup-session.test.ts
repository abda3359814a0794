import * as path from 'node:path';
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { build } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeCleanup, type CleanupDeps, type ExecutionStatus, type ExecutionStatusChangeEvent } from '../../lambdas/shared/cleanup';
import { WorkflowMetricNames } from '../../lambdas/shared/contract';
import { ApiError, ServiceUnavailable, Unauthorized } from '../../lambdas/shared/errors';
import type { Log } from '../../lambdas/shared/handlers';
import { memorySessionRecords, type SessionRecords } from '../../lambdas/shared/session-records';
import { startScriptedServer, type ScriptedServer } from '../helpers/http-server';
import { lambdaContext } from '../helpers/lambda-context';

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

function setup(terminate: (sessionId: string) => Promise<{ terminated: boolean }> = async () => ({ terminated: true }), extra: Partial<CleanupDeps> = {}) {
  const terminateSession = vi.fn(terminate);
  const client = vi.fn(async () => ({ terminateSession }));
  const log = { info: vi.fn(), warn: vi.fn(), error: vi.fn() } satisfies Log;
  const sessions: SessionRecords = extra.sessions ?? memorySessionRecords();
  const deps: CleanupDeps = { client, log, sessions, ...extra };
  /** Start session recorded the execution's session. */
  const recorded = () => sessions.started(EXECUTION_ARN, SESSION_ID);
  return { cleanup: makeCleanup(deps), terminateSession, client, log, sessions, recorded };
}

describe('cleanupSession', () => {
  it('terminates the recorded session once, and marks the record ended', async () => {
    const { cleanup, terminateSession, log, sessions, recorded } = setup();
    await recorded();

    const outcome = await cleanup(statusChange('TIMED_OUT'));

    expect(outcome).toEqual({ executionArn: EXECUTION_ARN, status: 'TIMED_OUT', sessionId: SESSION_ID, action: 'terminated' });
    expect(terminateSession).toHaveBeenCalledTimes(1);
    expect(terminateSession).toHaveBeenCalledWith(SESSION_ID);
    expect(log.info).toHaveBeenCalledWith('session terminated by cleanup', expect.objectContaining({ sessionId: SESSION_ID, executionArn: EXECUTION_ARN }));
    expect((await sessions.get(EXECUTION_ARN))?.endedAt).toEqual(expect.any(Number));
  });

  it('reads the record of the execution named in the event only', async () => {
    const { cleanup, terminateSession, sessions } = setup();
    await sessions.started('arn:aws:states:us-east-1:123456789012:execution:WebrunWorkflow:other', 'sess-other');

    await expect(cleanup(statusChange('ABORTED'))).resolves.toMatchObject({ sessionId: null, action: 'no-session' });
    expect(terminateSession).not.toHaveBeenCalled();
  });

  it('without a recorded session: does nothing, and marks the execution stopped so that a start still in flight cannot record one', async () => {
    const { cleanup, terminateSession, client, sessions } = setup();

    await expect(cleanup(statusChange('FAILED'))).resolves.toMatchObject({ sessionId: null, action: 'no-session' });
    expect(client).not.toHaveBeenCalled();
    expect(terminateSession).not.toHaveBeenCalled();
    // Start session answered after the stop: its record is refused, and its handler ends the session it started.
    await expect(sessions.started(EXECUTION_ARN, SESSION_ID)).rejects.toMatchObject({ name: 'SessionStopped' });
    expect(await sessions.get(EXECUTION_ARN)).toBeUndefined();
  });

  it('stopped while starting the session, whose start recorded it first: the cleanup terminates it', async () => {
    const { cleanup, terminateSession, recorded } = setup();
    await recorded();

    await expect(cleanup(statusChange('ABORTED'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'terminated' });
    expect(terminateSession).toHaveBeenCalledWith(SESSION_ID);
  });

  it('a session recorded between the record read and the stop mark is found by the mark\'s failed condition, and terminated', async () => {
    const records = memorySessionRecords();
    // The start records its session just after the cleanup's first read found nothing.
    const sessions: SessionRecords = {
      ...records,
      get: async (arn) => {
        const found = await records.get(arn);
        await records.started(arn, SESSION_ID);
        return found;
      },
    };
    const { cleanup, terminateSession } = setup(undefined, { sessions });

    await expect(cleanup(statusChange('ABORTED'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'terminated' });
    expect(terminateSession).toHaveBeenCalledWith(SESSION_ID);
  });

  it('a second delivery of the same event is a no-op: one terminate in all', async () => {
    const { cleanup, terminateSession, recorded } = setup();
    await recorded();

    await cleanup(statusChange('TIMED_OUT'));
    await expect(cleanup(statusChange('TIMED_OUT'))).resolves.toMatchObject({ action: 'ended-by-workflow' });
    expect(terminateSession).toHaveBeenCalledTimes(1);
  });

  it('a record the workflow marked ended needs nothing', async () => {
    const { cleanup, terminateSession, client, sessions, recorded } = setup();
    await recorded();
    await sessions.ended(EXECUTION_ARN, SESSION_ID);

    await expect(cleanup(statusChange('FAILED'))).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'ended-by-workflow' });
    expect(client).not.toHaveBeenCalled();
    expect(terminateSession).not.toHaveBeenCalled();
  });

  it('counts each session it terminates in SessionsTerminated, as the workflow counts its own; an ended one is not counted', async () => {
    const metrics = { add: vi.fn() };
    const terminated = setup(undefined, { metrics });
    await terminated.recorded();
    await terminated.cleanup(statusChange('ABORTED'));
    await terminated.cleanup(statusChange('ABORTED'));
    expect(metrics.add.mock.calls).toEqual([[WorkflowMetricNames.sessionsTerminated, 1]]);

    const none = { add: vi.fn() };
    const gone = setup(async () => ({ terminated: false }), { metrics: none });
    await gone.recorded();
    await gone.cleanup(statusChange('TIMED_OUT'));
    expect(gone.terminateSession).toHaveBeenCalledTimes(1);
    expect(none.add).not.toHaveBeenCalled();
  });

  it('logs a session that had already ended once, and does not throw', async () => {
    const { cleanup, terminateSession, log, recorded } = setup(async () => ({ terminated: false }));
    await recorded();

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
    const { cleanup, log, recorded } = setup(async () => {
      throw error;
    });
    await recorded();

    await expect(cleanup(statusChange('ABORTED'))).rejects.toBe(error);
    expect(log.warn).toHaveBeenCalledWith('session cleanup failed, will be retried', expect.objectContaining({ sessionId: SESSION_ID, error: error.name }));
  });

  it('throws a final error too, logged as a session that may still be open, so the event reaches the dead-letter queue', async () => {
    const error = new Unauthorized('terminate was refused with HTTP 401 INVALID_API_KEY.');
    const { cleanup, log, recorded } = setup(async () => {
      throw error;
    });
    await recorded();

    await expect(cleanup(statusChange('ABORTED'))).rejects.toBe(error);
    expect(log.error).toHaveBeenCalledWith('session cleanup failed; the session may still be open', expect.objectContaining({ sessionId: SESSION_ID }));
  });

  it('throws when the session records cannot be read, so Lambda retries the event', async () => {
    const records = memorySessionRecords();
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    const { cleanup, terminateSession } = setup(undefined, { sessions: { ...records, get: async () => Promise.reject(throttled) } });

    await expect(cleanup(statusChange('FAILED'))).rejects.toThrow('Rate exceeded');
    expect(terminateSession).not.toHaveBeenCalled();
  });

  it('ignores statuses that need no cleanup', async () => {
    const { cleanup, client, sessions } = setup();

    await expect(cleanup(statusChange('SUCCEEDED'))).resolves.toMatchObject({ action: 'ignored' });
    expect(client).not.toHaveBeenCalled();
    // Nothing was marked: the execution's record is untouched.
    await expect(sessions.started(EXECUTION_ARN, SESSION_ID)).resolves.toBeUndefined();
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
  let written: string[] = [];
  let server: ScriptedServer | undefined;
  /** The webrun API the handler calls (its WEBRUN_BASE_URL): it accepts every terminate and records the requests. */
  async function webrunApi(): Promise<ScriptedServer> {
    server = await startScriptedServer();
    server.respond(() => ({ body: { success: true } }));
    vi.stubEnv('WEBRUN_BASE_URL', server.url);
    return server;
  }

  beforeEach(() => {
    secretsMock.reset();
    dynamoMock.reset();
    vi.resetModules();
    vi.stubEnv('WEBRUN_SECRET_ARN', SECRET_ARN);
    vi.stubEnv('WEBRUN_BASE_URL', 'https://webrun.test');
    vi.stubEnv('WEBRUN_SESSION_TABLE', 'Sessions');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    vi.stubEnv('WEBRUN_STACK_NAME', 'WebrunSfn');
    // What the handler writes (its EMF metrics) is kept for the tests to read.
    written = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => (written.push(String(chunk)), true)) as never);
    vi.spyOn(console, 'warn').mockImplementation(() => {});
  });

  afterEach(async () => {
    vi.unstubAllEnvs();
    await server?.close();
    server = undefined;
    vi.restoreAllMocks();
  });

  it('terminates the session with the API key from the workflow secret, and marks its record in the table', async () => {
    secretsMock.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: 'key-from-secret' }) });
    dynamoMock.on(GetItemCommand).resolves({ Item: { executionArn: { S: EXECUTION_ARN }, sessionId: { S: SESSION_ID }, startedAt: { N: '1' } } });
    dynamoMock.on(UpdateItemCommand).resolves({});
    const api = await webrunApi();

    const { cleanupSession: handler } = await import('../../lambdas/index.js');
    await expect(handler(statusChange('TIMED_OUT'), lambdaContext())).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'terminated' });
    // The dashboard sets SessionsTerminated against SessionsStarted: a session this ends is counted, with the stack.
    const emf = written.flatMap((l) => l.split('\n')).filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(emf).toContainEqual(expect.objectContaining({ [WorkflowMetricNames.sessionsTerminated]: 1, stack: 'WebrunSfn' }));

    expect(secretsMock.commandCalls(GetSecretValueCommand)[0].args[0].input).toEqual({ SecretId: SECRET_ARN });
    expect(api.requests).toHaveLength(1);
    const [request] = api.requests;
    expect([request.method, request.path]).toEqual(['POST', '/start/send-message']);
    expect(request.headers.authorization).toBe('Bearer key-from-secret');
    expect(request.json).toEqual({ sessionId: SESSION_ID, message: { actionType: 'state', newState: 'terminate' } });
    expect(dynamoMock.commandCalls(GetItemCommand)[0].args[0].input).toMatchObject({ TableName: 'Sessions', Key: { executionArn: { S: EXECUTION_ARN } }, ConsistentRead: true });
    expect(dynamoMock.commandCalls(UpdateItemCommand)[0].args[0].input).toMatchObject({ TableName: 'Sessions', Key: { executionArn: { S: EXECUTION_ARN } }, ConditionExpression: 'attribute_not_exists(endedAt)' });
  });

  it('without a record, marks the execution stopped in one conditional write and calls no API; with one recorded meanwhile, ends it', async () => {
    secretsMock.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: 'key-from-secret' }) });
    dynamoMock.on(GetItemCommand).resolves({});
    dynamoMock.on(UpdateItemCommand).resolves({});
    const api = await webrunApi();
    const { cleanupSession: handler } = await import('../../lambdas/index.js');

    await expect(handler(statusChange('ABORTED'), lambdaContext())).resolves.toMatchObject({ sessionId: null, action: 'no-session' });
    expect(api.requests).toEqual([]);
    expect(dynamoMock.commandCalls(UpdateItemCommand)[0].args[0].input).toMatchObject({
      TableName: 'Sessions', Key: { executionArn: { S: EXECUTION_ARN } }, ConditionExpression: 'attribute_not_exists(sessionId)',
      UpdateExpression: expect.stringContaining('stoppedAt'),
    });

    // The start recorded its session between the read and the mark: the mark's condition fails, the record is read again.
    dynamoMock.reset();
    dynamoMock.on(GetItemCommand).resolvesOnce({}).resolves({ Item: { executionArn: { S: EXECUTION_ARN }, sessionId: { S: SESSION_ID }, startedAt: { N: '1' } } });
    dynamoMock.on(UpdateItemCommand, { ConditionExpression: 'attribute_not_exists(sessionId)' })
      .rejects(Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' }));
    dynamoMock.on(UpdateItemCommand, { ConditionExpression: 'attribute_not_exists(endedAt)' }).resolves({});
    await expect(handler(statusChange('ABORTED'), lambdaContext())).resolves.toMatchObject({ sessionId: SESSION_ID, action: 'terminated' });
    expect(api.requests).toHaveLength(1);
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
