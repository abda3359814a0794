/**
 * The result store: where a task result too large to travel in the execution state is written, so the state
 * carries a `resultRef` instead. Deployed it is the stack's S3 bucket (`s3://...`); locally a folder
 * (`file://...`, local/result-store.ts). Which results go there is decided here, the same way everywhere.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { RESULT_LIMITS, type ResultRef, type TaskResult, type WorkflowOutput } from './contract';
import { ConfigError, ResultStoreError } from './errors';

export interface ResultStore {
  /** Writes `body` under `key` (overwriting: a retried step writes the same key); returns its URI. */
  put(key: string, body: string): Promise<string>;
  /** Reads what a URI of this store points at. */
  get(uri: string): Promise<string>;
}

export interface ResultPlacement {
  /** Results whose JSON is larger than this go to the store. */
  inlineResultBytes: number;
}

/** A value's size as Step Functions measures a payload: its JSON in UTF-8 bytes. */
export const bytesOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');

/** Bytes of the results kept inline in a list (the whole entries, as they sit in the state). */
export function inlineBytes(results: readonly TaskResult[]): number {
  return results.filter((r) => r.resultRef === undefined).reduce((sum, r) => sum + bytesOf(r), 0);
}

/**
 * Whether a completed result stays in the state: at most `inlineResultBytes` itself, and within the run's inline
 * budget together with the results kept inline before it.
 */
export function keepsInline(result: TaskResult, prior: readonly TaskResult[], placement: ResultPlacement): boolean {
  if (bytesOf(result.result) > placement.inlineResultBytes) return false;
  return inlineBytes(prior) + bytesOf(result) <= RESULT_LIMITS.inlineBudgetBytes;
}

/** Writes a result's data to the store and returns the entry that references it; a failed write is a ResultStoreError. */
export async function storeResult(result: TaskResult, store: ResultStore, key: string): Promise<TaskResult> {
  const body = JSON.stringify(result.result ?? {});
  let uri: string;
  try {
    uri = await store.put(key, body);
  } catch (err) {
    const e = err as Error;
    throw new ResultStoreError(`The result of task ${result.index + 1} could not be stored: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`, { cause: err });
  }
  const ref: ResultRef = { uri, bytes: Buffer.byteLength(body, 'utf8'), sha256: createHash('sha256').update(body).digest('hex') };
  const { result: _data, ...rest } = result;
  return { ...rest, resultRef: ref };
}

/** Reads a referenced result back, checking its size and digest. */
export async function loadResult(ref: ResultRef, store: ResultStore): Promise<TaskResult['result']> {
  const body = await store.get(ref.uri);
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (sha256 !== ref.sha256) throw new ConfigError(`The stored result ${ref.uri} does not match its reference (sha256 ${sha256}, expected ${ref.sha256}).`);
  return JSON.parse(body) as TaskResult['result'];
}

/** The output with every `resultRef` replaced by the `result` it points at. */
export async function resolveOutput(output: WorkflowOutput, store: ResultStore): Promise<WorkflowOutput> {
  const tasks = await Promise.all(output.tasks.map(async (task) => {
    if (!task.resultRef) return task;
    const { resultRef, ...rest } = task;
    return { ...rest, result: await loadResult(resultRef, store) };
  }));
  return { ...output, tasks };
}

/** The S3 commands, loaded on first use: a local run keeps results in a folder and never loads the SDK client. */
const s3Commands = () => import('@aws-sdk/client-s3');

/** The stack's bucket. Objects are JSON, encrypted by the bucket's default encryption. */
export function s3ResultStore(client: Pick<S3Client, 'send'>, bucket: string | undefined): ResultStore {
  const need = () => {
    if (!bucket) throw new ConfigError('No result bucket is configured (environment variable WEBRUN_RESULT_BUCKET): a large result cannot be kept.');
    return bucket;
  };
  return {
    async put(key, body) {
      const name = need();
      await client.send(new (await s3Commands()).PutObjectCommand({ Bucket: name, Key: key, Body: body, ContentType: 'application/json' }));
      return `s3://${name}/${key}`;
    },
    async get(uri) {
      const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
      if (!m) throw new ConfigError(`${JSON.stringify(uri)} is not an s3:// result reference.`);
      const answer = await client.send(new (await s3Commands()).GetObjectCommand({ Bucket: m[1], Key: m[2] }));
      return (await answer.Body?.transformToString('utf8')) ?? '';
    },
  };
}
