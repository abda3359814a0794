/**
 * Session records: which webrun session an execution opened, and whether it was ended. Start session writes the
 * record the moment start-session answers (before its state can end), each terminate marks it ended, and the
 * cleanup of an execution that stopped without terminating reads it directly (no history to page through, so it
 * holds for thousands of stopped executions at once). Deployed: a DynamoDB table with TTL; locally: memory.
 *
 * A stop can land while start-session is in flight (the Lambda runs on after StopExecution). The record's item
 * settles that race with conditional writes: the cleanup marks an execution without a recorded session stopped,
 * and a start that answers after that mark may not record its session (SessionStopped) and ends it itself; a start
 * that recorded first is found by the cleanup, which ends its session. Whichever writes first, the session ends.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { conditionalWrite, dynamodbCommands } from './dynamodb';
import { ConfigError } from './errors';

/** Start session answered after the cleanup marked its execution stopped: the session must be ended by its starter. */
export class SessionStopped extends Error {
  override readonly name = 'SessionStopped';
  constructor(executionArn: string) {
    super(`The execution ${executionArn} was stopped before its session was recorded; its session is terminated. A redriven execution cannot start a session: start a new execution.`);
  }
}

export interface SessionRecord {
  executionArn: string;
  sessionId: string;
  /** Epoch ms. */
  startedAt: number;
  /** Epoch ms, once a terminate succeeded (or the API said the session was already gone). */
  endedAt?: number;
  /** The session's live view, for a person asked a guardrail question: kept here, never in the execution's state. */
  liveViewUrl?: string;
}

export interface SessionRecords {
  /** Records the session an execution opened; throws SessionStopped when the cleanup marked the execution stopped first. */
  started(executionArn: string, sessionId: string, extras?: { liveViewUrl?: string }): Promise<void>;
  /**
   * For the cleanup of a stopped execution: the record of its session if one was recorded, else undefined, having
   * marked the execution stopped in the same conditional write, so that a start still in flight cannot record one.
   */
  stoppedUnlessStarted(executionArn: string): Promise<SessionRecord | undefined>;
  /** Marks the execution's session ended; false when it already was (a repeated terminate or event: do nothing more). */
  ended(executionArn: string, sessionId: string): Promise<boolean>;
  get(executionArn: string): Promise<SessionRecord | undefined>;
}

/** In memory: the local runner's records, and a test double. */
export function memorySessionRecords(now: () => number = Date.now): SessionRecords & { all(): SessionRecord[] } {
  const records = new Map<string, SessionRecord>();
  const stopped = new Set<string>();
  return {
    async started(executionArn, sessionId, extras = {}) {
      if (stopped.has(executionArn)) throw new SessionStopped(executionArn);
      records.set(executionArn, { executionArn, sessionId, startedAt: now(), ...(extras.liveViewUrl ? { liveViewUrl: extras.liveViewUrl } : {}) });
    },
    async ended(executionArn, sessionId) {
      const record = records.get(executionArn);
      if (record?.endedAt !== undefined) return false;
      records.set(executionArn, { ...record, executionArn, sessionId, startedAt: record?.startedAt ?? now(), endedAt: now() });
      return true;
    },
    async get(executionArn) {
      const record = records.get(executionArn);
      return record && { ...record };
    },
    async stoppedUnlessStarted(executionArn) {
      const record = records.get(executionArn);
      if (record) return { ...record };
      stopped.add(executionArn);
      return undefined;
    },
    all: () => [...records.values()].map((r) => ({ ...r })),
  };
}

export interface DynamoRecordsOptions {
  client: Pick<DynamoDBClient, 'send'>;
  tableName: string | undefined;
  /** How long a record is kept (DynamoDB TTL): longer than any execution can run. */
  ttlSeconds: number;
  now?: () => number;
}

/** The stack's table: partition key `executionArn`, TTL attribute `expiresAt` (epoch seconds). */
export function dynamoSessionRecords(options: DynamoRecordsOptions): SessionRecords {
  const { client } = options;
  const now = options.now ?? Date.now;
  const table = () => {
    if (!options.tableName) throw new ConfigError('No session table is configured (environment variable WEBRUN_SESSION_TABLE).');
    return options.tableName;
  };
  const expiresAt = () => String(Math.floor(now() / 1000) + options.ttlSeconds);
  const records: SessionRecords = {
    async started(executionArn, sessionId, extras = {}) {
      const put = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).PutItemCommand({
        TableName: table(),
        Item: {
          executionArn: { S: executionArn },
          sessionId: { S: sessionId },
          startedAt: { N: String(now()) },
          expiresAt: { N: expiresAt() },
          ...(extras.liveViewUrl ? { liveViewUrl: { S: extras.liveViewUrl } } : {}),
        },
        ConditionExpression: 'attribute_not_exists(stoppedAt)',
      })));
      if (!put.written) throw new SessionStopped(executionArn);
    },
    async stoppedUnlessStarted(executionArn) {
      const update = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).UpdateItemCommand({
        TableName: table(),
        Key: { executionArn: { S: executionArn } },
        UpdateExpression: 'SET stoppedAt = if_not_exists(stoppedAt, :now), expiresAt = if_not_exists(expiresAt, :exp)',
        ConditionExpression: 'attribute_not_exists(sessionId)',
        ExpressionAttributeValues: { ':now': { N: String(now()) }, ':exp': { N: expiresAt() } },
      })));
      return update.written ? undefined : records.get(executionArn);
    },
    async ended(executionArn, sessionId) {
      const update = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).UpdateItemCommand({
        TableName: table(),
        Key: { executionArn: { S: executionArn } },
        UpdateExpression: 'SET sessionId = :sid, endedAt = :now, startedAt = if_not_exists(startedAt, :now), expiresAt = if_not_exists(expiresAt, :exp)',
        ConditionExpression: 'attribute_not_exists(endedAt)',
        ExpressionAttributeValues: { ':sid': { S: sessionId }, ':now': { N: String(now()) }, ':exp': { N: expiresAt() } },
      })));
      return update.written;
    },
    async get(executionArn) {
      const answer = await client.send(new (await dynamodbCommands()).GetItemCommand({ TableName: table(), Key: { executionArn: { S: executionArn } }, ConsistentRead: true }));
      const item = answer.Item;
      if (!item?.sessionId?.S) return undefined;
      return {
        executionArn,
        sessionId: item.sessionId.S,
        startedAt: Number(item.startedAt?.N ?? 0),
        ...(item.endedAt?.N !== undefined ? { endedAt: Number(item.endedAt.N) } : {}),
        ...(item.liveViewUrl?.S ? { liveViewUrl: item.liveViewUrl.S } : {}),
      };
    },
  };
  return records;
}
