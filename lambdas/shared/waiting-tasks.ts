/**
 * Tasks waiting for their doorbell (completion by webhook). When a task is sent with a webhook, the send step stores
 * what it takes to resume the execution: the task token, the state's loop so far, the task id once the API gave
 * one, and a digest of the per-task `auth` value. The URL the API rings holds the record's key and an unguessable
 * nonce; a doorbell is only a hint that resumes nothing by itself (the receiver confirms with a GET), and a record
 * is claimed once (a conditional delete), however many doorbells ring. Deployed: a DynamoDB table with TTL;
 * locally: memory.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { conditionalWrite, dynamodbCommands } from './dynamodb';
import { ConfigError } from './errors';
import type { AnsweredGuardrail } from './contract';
import type { LoopState, RunState } from './state';
import type { SiteCredentialRef, WorkflowTask } from './types';

export interface WaitingTask {
  /** `waitingKey(executionArn, index)`: the fallback finds the record from the state alone. */
  key: string;
  /** In the doorbell URL; checked in constant time. */
  nonce: string;
  /** SHA-256 (hex) of the `auth` the API presents with the doorbell. */
  authDigest: string;
  /** The Step Functions task token that resumes the execution. */
  token: string;
  executionArn: string;
  sessionId: string;
  index: number;
  /** Known once send-message answered. */
  taskId?: string;
  sentAt: number;
  /** The state's loop when the task was sent: resuming adds the task's result to it. */
  loop: LoopState;
  /** The task's site-credential references (secret names, never values): its final answer is redacted of them. */
  secretRefs?: SiteCredentialRef[];
  /** The doorbell wait of the task after this one (the receiver has no run to compute it from). */
  nextWaitSeconds?: number;
  /** The guardrail questions the task got and that rules answered meanwhile. */
  answered?: AnsweredGuardrail[];
  /** The run's guardrails and budget, which the receiver applies when the doorbell brings a question or a cost. */
  run?: Pick<RunState, 'guardrails' | 'maxCostUsd'> & {
    taskGuardrails?: WorkflowTask['guardrails'];
    /** The earlier tasks' guardrails and site-credential references (names): the secrets the agent may repeat. */
    earlierTasks?: Array<Pick<WorkflowTask, 'guardrails' | 'secrets'>>;
  };
  /** Epoch seconds after which the record may go (DynamoDB TTL). */
  expiresAt: number;
}

export interface WaitingTasks {
  put(record: WaitingTask): Promise<void>;
  /** Adds the task id to a record still waiting (same nonce); false when it was claimed or replaced meanwhile. */
  setTaskId(key: string, nonce: string, taskId: string): Promise<boolean>;
  /**
   * Records the guardrail questions answered so far, on a record still waiting (same nonce) that holds `before`
   * answers: false when the record was claimed, or another caller recorded an answer first (it answers that question).
   */
  setAnswered(key: string, nonce: string, answered: AnsweredGuardrail[], before: number): Promise<boolean>;
  get(key: string): Promise<WaitingTask | undefined>;
  /** Deletes the record if it is still the one with this nonce, returning it: the one caller that gets it resumes. */
  claim(key: string, nonce: string): Promise<WaitingTask | undefined>;
  /**
   * Takes the record out of the doorbell's reach without deleting it (the polling fallback): its nonce is replaced by
   * one nobody was given, so a late doorbell is unknown and a resume in flight claims nothing, while the fallback,
   * should Step Functions retry it, still reads the task id and the answers from it. False when the record was
   * claimed or replaced meanwhile. The record goes at its TTL.
   */
  retire(key: string, nonce: string): Promise<boolean>;
  /**
   * Puts a claimed record back, unless another record took its key meanwhile: a resume that came too late (the wait
   * had run out) leaves the task to the fallback, which finds it here. An update, so the receiver needs no PutItem.
   */
  restore(record: WaitingTask): Promise<boolean>;
}

/** The record key of task `index` of an execution: derived, not secret (the nonce is). */
export function waitingKey(executionArn: string, index: number): string {
  return createHash('sha256').update(`${executionArn}#${index}`).digest('hex').slice(0, 40);
}

/** 32 random bytes, URL-safe: a nonce or an auth value. */
export function unguessable(): string {
  return randomBytes(32).toString('base64url');
}

export function digest(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Constant-time equality of two strings (of any lengths). */
export function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

export function memoryWaitingTasks(): WaitingTasks & { all(): WaitingTask[] } {
  const records = new Map<string, WaitingTask>();
  const copy = (r: WaitingTask | undefined) => (r ? (structuredClone(r) as WaitingTask) : undefined);
  return {
    async put(record) {
      records.set(record.key, copy(record)!);
    },
    async setTaskId(key, nonce, taskId) {
      const r = records.get(key);
      if (!r || r.nonce !== nonce) return false;
      r.taskId = taskId;
      return true;
    },
    async setAnswered(key, nonce, answered, before) {
      const r = records.get(key);
      if (!r || r.nonce !== nonce || (r.answered?.length ?? 0) !== before) return false;
      r.answered = structuredClone(answered);
      return true;
    },
    async get(key) {
      return copy(records.get(key));
    },
    async claim(key, nonce) {
      const r = records.get(key);
      if (!r || r.nonce !== nonce) return undefined;
      records.delete(key);
      return r;
    },
    async retire(key, nonce) {
      const r = records.get(key);
      if (!r || r.nonce !== nonce) return false;
      r.nonce = unguessable();
      return true;
    },
    async restore(record) {
      if (records.has(record.key)) return false;
      records.set(record.key, copy(record)!);
      return true;
    },
    all: () => [...records.values()].map((r) => copy(r)!),
  };
}

export interface DynamoWaitingOptions {
  client: Pick<DynamoDBClient, 'send'>;
  tableName: string | undefined;
}

/** The stack's table: partition key `key`, TTL attribute `expiresAt`; the record itself is one JSON attribute. */
export function dynamoWaitingTasks(options: DynamoWaitingOptions): WaitingTasks {
  const { client } = options;
  const table = () => {
    if (!options.tableName) throw new ConfigError('No waiting-task table is configured (environment variable WEBRUN_WAITING_TABLE): completion by webhook is off.');
    return options.tableName;
  };
  const parse = (item: Record<string, { S?: string; N?: string }> | undefined): WaitingTask | undefined =>
    item?.record?.S
      ? {
          ...(JSON.parse(item.record.S) as WaitingTask),
          ...(item.taskId?.S ? { taskId: item.taskId.S } : {}),
          ...(item.answered?.S ? { answered: JSON.parse(item.answered.S) as AnsweredGuardrail[] } : {}),
        }
      : undefined;
  return {
    async put(record) {
      const { taskId: _taskId, answered: _answered, ...rest } = record;
      await client.send(new (await dynamodbCommands()).PutItemCommand({
        TableName: table(),
        Item: { key: { S: record.key }, nonce: { S: record.nonce }, record: { S: JSON.stringify(rest) }, expiresAt: { N: String(record.expiresAt) } },
      }));
    },
    async setTaskId(key, nonce, taskId) {
      const update = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).UpdateItemCommand({
        TableName: table(),
        Key: { key: { S: key } },
        UpdateExpression: 'SET taskId = :t',
        ConditionExpression: 'nonce = :n',
        ExpressionAttributeValues: { ':t': { S: taskId }, ':n': { S: nonce } },
      })));
      return update.written;
    },
    async setAnswered(key, nonce, answered, before) {
      // `answers` counts them, so that of two callers answering the same question only the first writes.
      const update = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).UpdateItemCommand({
        TableName: table(),
        Key: { key: { S: key } },
        UpdateExpression: 'SET answered = :a, answers = :count',
        ConditionExpression: before === 0 ? 'nonce = :n AND attribute_not_exists(answers)' : 'nonce = :n AND answers = :before',
        ExpressionAttributeValues: {
          ':a': { S: JSON.stringify(answered) },
          ':n': { S: nonce },
          ':count': { N: String(answered.length) },
          ...(before === 0 ? {} : { ':before': { N: String(before) } }),
        },
      })));
      return update.written;
    },
    async get(key) {
      const answer = await client.send(new (await dynamodbCommands()).GetItemCommand({ TableName: table(), Key: { key: { S: key } }, ConsistentRead: true }));
      return parse(answer.Item as never);
    },
    async claim(key, nonce) {
      const deletion = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).DeleteItemCommand({
        TableName: table(),
        Key: { key: { S: key } },
        ConditionExpression: 'nonce = :n',
        ExpressionAttributeValues: { ':n': { S: nonce } },
        ReturnValues: 'ALL_OLD',
      })));
      return deletion.written ? parse(deletion.output.Attributes as never) : undefined;
    },
    async retire(key, nonce) {
      const update = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).UpdateItemCommand({
        TableName: table(),
        Key: { key: { S: key } },
        UpdateExpression: 'SET nonce = :retired',
        ConditionExpression: 'nonce = :n',
        ExpressionAttributeValues: { ':retired': { S: unguessable() }, ':n': { S: nonce } },
      })));
      return update.written;
    },
    async restore(record) {
      // taskId and answered are attributes of their own, as setTaskId and setAnswered write them.
      const { taskId, answered, ...rest } = record;
      const values: Record<string, { S: string } | { N: string }> = {
        ':n': { S: record.nonce },
        ':r': { S: JSON.stringify(rest) },
        ':e': { N: String(record.expiresAt) },
        ...(taskId ? { ':t': { S: taskId } } : {}),
        ...(answered?.length ? { ':a': { S: JSON.stringify(answered) }, ':count': { N: String(answered.length) } } : {}),
      };
      const sets = ['nonce = :n', '#record = :r', 'expiresAt = :e', ...(taskId ? ['taskId = :t'] : []), ...(answered?.length ? ['answered = :a', 'answers = :count'] : [])];
      const update = await conditionalWrite(async () => client.send(new (await dynamodbCommands()).UpdateItemCommand({
        TableName: table(),
        Key: { key: { S: record.key } },
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: 'attribute_not_exists(nonce)',
        ExpressionAttributeNames: { '#record': 'record' },
        ExpressionAttributeValues: values,
      })));
      return update.written;
    },
  };
}
