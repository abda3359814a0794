/**
 * The documented answer shapes (see shared/webrun-api/API-NOTES.md): start-session, a pending task, a finished task
 * at the poll URL or inside send-message, in the `documented` or the alternative `status` shape; plausible completed
 * data (text, JSON sampled from the task's schema, CSV), padded to `resultBytes` on request; token usage and cost.
 */
import type { Task } from './model';
import { isObject, shorten, type Json } from './util';

function singular(key: string): string {
  return key.endsWith('s') && key.length > 1 ? key.slice(0, -1) : key;
}

/** A sample value for a JSON schema: object properties by type, arrays of one item. */
export function sampleFromSchema(schema: unknown, key = 'result', depth = 0): unknown {
  if (!isObject(schema) || depth > 8) return `Sample ${key}`;
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if ('example' in schema) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = schema[k];
    if (schema.type === undefined && Array.isArray(list) && list.length > 0) return sampleFromSchema(list[0], key, depth + 1);
  }
  let type: unknown = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? 'null';
  if (typeof type !== 'string') type = isObject(schema.properties) ? 'object' : schema.items !== undefined ? 'array' : 'string';
  const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  const clamp = (n: number): number => Math.min(max ?? Infinity, Math.max(min ?? -Infinity, n));
  switch (type) {
    case 'object': {
      const out: Json = {};
      if (isObject(schema.properties)) {
        for (const [k, sub] of Object.entries(schema.properties)) out[k] = sampleFromSchema(sub, k, depth + 1);
      }
      return out;
    }
    case 'array':
      return [sampleFromSchema(schema.items, singular(key), depth + 1)];
    case 'integer':
      return Math.round(clamp(42));
    case 'number':
      return clamp(19.99);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default: {
      let s: string;
      switch (schema.format) {
        case 'uri':
        case 'url':
          s = `https://example.com/${encodeURIComponent(key)}/1`;
          break;
        case 'email':
          s = 'user@example.com';
          break;
        case 'date':
          s = '2024-01-15';
          break;
        case 'date-time':
          s = '2024-01-15T10:00:00Z';
          break;
        default:
          s = `Sample ${key}`;
      }
      if (typeof schema.maxLength === 'number' && s.length > schema.maxLength) s = s.slice(0, schema.maxLength);
      return s;
    }
  }
}

function csvCell(v: unknown): string {
  const s =
    typeof v === 'string'
      ? v
      : Array.isArray(v)
        ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(';')
        : typeof v === 'object' && v !== null
          ? JSON.stringify(v)
          : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The `data` of a completed task, by the message's `outputType` and `outputSchema`. */
export function completedData(message: Json, taskDetails: string): Json {
  const summary = shorten(taskDetails);
  const outputType = message.outputType;
  const schema = message.outputSchema;
  if (outputType === 'structured_json') {
    let output = sampleFromSchema(schema);
    const usable = Array.isArray(output) || (isObject(output) && Object.keys(output).length > 0);
    if (!isObject(schema) || !usable) output = { result: `Completed: ${summary}` };
    return { message: JSON.stringify(output), output };
  }
  if (outputType === 'structured_csv') {
    let row: unknown = isObject(schema) ? sampleFromSchema(schema) : undefined;
    if (Array.isArray(row)) row = row[0];
    const r: Json = isObject(row) && Object.keys(row).length > 0 ? row : { result: `Completed: ${summary}`, source: 'https://example.com' };
    return { message: `${Object.keys(r).map(csvCell).join(',')}\n${Object.values(r).map(csvCell).join(',')}\n` };
  }
  return { message: `Done: ${summary}. The task was completed successfully and the page shows the expected result.` };
}

const FILLER = 'The page listed further results, each with a title, a price and a short description. ';

/**
 * `data` grown to exactly `bytes` bytes of JSON by lengthening `message` (a string afterwards): filler sentences for
 * text, trailing spaces for structured output (so a JSON or CSV message still parses). Larger data is left as is.
 */
export function padToBytes(data: Json, bytes: number, outputType: unknown): Json {
  if (Buffer.byteLength(JSON.stringify(data)) >= bytes) return data;
  const out: Json = { ...data, message: typeof data.message === 'string' ? data.message : '' };
  const missing = bytes - Buffer.byteLength(JSON.stringify(out));
  if (missing <= 0) return out;
  const structured = outputType === 'structured_json' || outputType === 'structured_csv';
  const filler = structured ? ' '.repeat(missing) : FILLER.repeat(Math.ceil(missing / FILLER.length)).slice(0, missing);
  out.message = `${out.message as string}${filler}`;
  return out;
}

export function startAnswer(sessionId: string, socketURL: string, initialPrompt: string, balance: number): Json {
  return {
    success: true,
    sessionId,
    socketURL,
    streaming: {
      webRTCURL: `https://127.0.0.1:8889/${sessionId}/whep`,
      webViewURL: `https://127.0.0.1:8889/${sessionId}`,
      dimensions: { width: 1024, height: 600 },
    },
    initialPrompt,
    expiresIn: 300000,
    balance,
    message: 'Connect to instance using sessionId in auth',
  };
}

function ids(t: Task): Json {
  return { success: true, sessionId: t.sessionId, taskId: t.id };
}

/** Usage under the names of the shape: `prompt_tokens`/`completion_tokens` (documented) or `inputTokens`/`outputTokens`. */
function usageOf(t: Task, now: number): Json {
  const u = t.usage(now);
  return t.shape === 'documented' ? { prompt_tokens: u.inputTokens, completion_tokens: u.outputTokens, cost: u.cost } : u;
}

function dataOf(t: Task, now: number): Json {
  let data = t.behaviour.data ? structuredClone(t.behaviour.data) : completedData(t.message, t.rec.taskDetails);
  if (t.shape === 'status' && !t.behaviour.data) {
    const u = t.usage(now);
    data = { ...data, inputTokens: u.inputTokens, outputTokens: u.outputTokens };
  }
  return t.behaviour.resultBytes === undefined ? data : padToBytes(data, t.behaviour.resultBytes, t.message.outputType);
}

/**
 * The answer for a task that stopped (completed, failed, at a guardrail question). `where` = the poll URL (top level
 * in the documented shape) or send-message (wrapped; carries usage only when the task's cost is scripted, so the
 * default stays the vendor's example).
 */
export function finalAnswer(t: Task, where: 'poll' | 'send', now: number): Json {
  const status = t.rec.status;
  if (status === 'failed') return { ...ids(t), status: 'failed', error: t.reason ?? 'Task failed' };
  if (status === 'guardrail') {
    const result = { type: 'guardrail_trigger', data: { type: 'human_input_needed', value: t.question } };
    return where === 'poll' && t.shape === 'documented' ? result : { ...ids(t), result };
  }
  const result = { type: 'task_completed', data: dataOf(t, now) };
  if (t.shape === 'status') return { ...ids(t), status: 'complete', result, usage: usageOf(t, now) };
  if (where === 'poll') return { ...result, usage: usageOf(t, now) };
  return t.costScripted ? { ...ids(t), result, usage: usageOf(t, now) } : { ...ids(t), result };
}

/** send-message (or a guardrail `resume`) for a task still running: the poll URL and the running usage. */
export function pendingSendAnswer(t: Task, pollUrl: string, now: number): Json {
  const pending = t.shape === 'status' ? { status: 'pending' } : { pending: true };
  return { ...ids(t), ...pending, pollUrl, usage: usageOf(t, now) };
}

/** GET /task for a task still running; the `status` shape alternates `active` and `pending`. */
export function pendingPollAnswer(t: Task, now: number): Json {
  const pending = t.shape === 'status' ? { status: t.pendingAnswered % 2 === 1 ? 'active' : 'pending' } : { pending: true };
  return { ...ids(t), ...pending, usage: usageOf(t, now) };
}
