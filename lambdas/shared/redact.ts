/**
 * Redaction of secret values (the API key, site credentials) from text that may leave the Lambda: error messages
 * built from the API's answers, and task outcomes whose text the agent may have filled with what it typed.
 */
import type { TaskOutcome } from './types';

const MARK = '[redacted]';

/** The values worth hiding, longest first, so a value that contains another is redacted whole. */
function hideable(values: readonly string[]): string[] {
  return values.filter((v) => v !== '').sort((a, b) => b.length - a.length);
}

export function redactText(text: string, values: readonly string[]): string {
  return hideable(values).reduce((t, value) => t.split(value).join(MARK), text);
}

/** A copy of a JSON value with every string (keys included) redacted; the value itself when nothing is hidden. */
export function redactDeep<T>(value: T, values: readonly string[]): T {
  const hidden = hideable(values);
  if (hidden.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, hidden);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [redactText(k, hidden), walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/**
 * A task outcome with the values hidden from what the API said (the result's data, a guardrail question, a failure
 * reason), never from the outcome's own fields: a short secret must not turn `kind` into `[redacted]ind`.
 */
export function redactOutcome(outcome: TaskOutcome, values: readonly string[]): TaskOutcome {
  if (hideable(values).length === 0) return outcome;
  switch (outcome.kind) {
    case 'completed':
      return { ...outcome, data: redactDeep(outcome.data, values) };
    case 'guardrail':
      return { ...outcome, question: redactText(outcome.question, values) };
    case 'failed':
      return { ...outcome, reason: redactText(outcome.reason, values) };
    default:
      return outcome;
  }
}
