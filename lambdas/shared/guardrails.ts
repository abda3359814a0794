/**
 * Guardrail questions answered by rules: which rule a question matches (the task's rules first, then the
 * session's), and what the workflow does: answer it (text, or a field of a `webrun-sfn/` secret, optionally a TOTP
 * code), fail the run, or ask a person. Pure, but for reading a secret.
 */
import { createContext, Script } from 'node:vm';
import type { AnsweredGuardrail } from './contract';
import type { SiteCredentialResolver } from './site-credentials';
import { totp } from './totp';
import type { WorkflowTask } from './types';

export type Guardrails = NonNullable<WorkflowTask['guardrails']>;

export type Decision =
  /** Send this answer and follow the task on. `fromSecret`: the text must be redacted wherever the agent repeats it. */
  | { kind: 'answer'; text: string; fromSecret: boolean }
  /** Ask a person, waiting at most this long. */
  | { kind: 'ask'; timeoutSeconds: number }
  /** End the run with Webrun.GuardrailTriggered: a rule says so, or no rule matches and nobody is asked. */
  | { kind: 'fail'; why?: string };

/** Answers one task may get unless its guardrails (or the session's) say otherwise. */
export const DEFAULT_MAX_ANSWERS = 5;

/**
 * How long one `/regex/` may take on one question. A pattern that backtracks catastrophically (`/^(\w+\s?)+\?$/`
 * on a long question) would otherwise hold the Lambda until its timeout, or the local runner past Ctrl-C.
 */
export const MATCH_TIMEOUT_MS = 100;

/** A rule's `/regex/` that did not finish on a question within MATCH_TIMEOUT_MS. */
export class SlowPattern extends Error {
  constructor(readonly when: string) {
    super(`the rule "${when}" took more than ${MATCH_TIMEOUT_MS} ms on the question (a pattern that backtracks: simplify it)`);
    this.name = 'SlowPattern';
  }
}

const test = new Script('pattern.test(question)');
const sandbox = createContext({});

/** Whether a rule's `when` (text, case-insensitive, or `/regex/flags`) matches the question; SlowPattern if it cannot tell in time. */
export function matches(when: string, question: string): boolean {
  // The form whenProblem (./schema/workflow-input.ts) validates: any letters after the last slash are flags.
  const m = /^\/(.*)\/([A-Za-z]*)$/s.exec(when);
  if (!m) return question.toLowerCase().includes(when.toLowerCase());
  Object.assign(sandbox, { pattern: new RegExp(m[1], m[2]), question });
  try {
    return test.runInContext(sandbox, { timeout: MATCH_TIMEOUT_MS }) === true;
  } catch (err) {
    if ((err as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new SlowPattern(when);
    throw err;
  } finally {
    Object.assign(sandbox, { pattern: undefined, question: undefined });
  }
}

/** The first rule whose `when` matches; a rule too slow to tell ends the search as a rule that fails the run. */
function firstMatching<R extends { when: string }>(rules: readonly R[], question: string): R | SlowPattern | undefined {
  try {
    return rules.find((r) => matches(r.when, question));
  } catch (err) {
    if (err instanceof SlowPattern) return err;
    throw err;
  }
}

/** What to do with a question, given the task's and the session's guardrails and the answers the task had. */
export async function decide(
  question: string,
  task: Guardrails | undefined,
  session: Guardrails | undefined,
  answered: readonly AnsweredGuardrail[],
  readSecret: SiteCredentialResolver,
  now = Date.now,
): Promise<Decision> {
  const maxAnswers = task?.maxAnswers ?? session?.maxAnswers ?? DEFAULT_MAX_ANSWERS;
  const rule = firstMatching([...(task?.rules ?? []), ...(session?.rules ?? [])], question);
  if (rule instanceof SlowPattern) return { kind: 'fail', why: rule.message };
  if (rule?.action === 'fail') return { kind: 'fail', why: `a rule ends the run on "${rule.when}"` };
  if (rule || (task?.ask ?? session?.ask)) {
    if (answered.length >= maxAnswers) return { kind: 'fail', why: `the task was already answered ${answered.length} time(s) (maxAnswers ${maxAnswers})` };
  }
  if (rule?.answer !== undefined) return { kind: 'answer', text: rule.answer, fromSecret: false };
  if (rule?.answerFromSecret) {
    const { secret, field, totp: isTotp } = rule.answerFromSecret;
    const fields = await readSecret(secret);
    const value = fields[field];
    if (value === undefined) return { kind: 'fail', why: `the secret ${secret} has no field "${field}"` };
    return { kind: 'answer', text: isTotp ? totp(value, now()) : value, fromSecret: true };
  }
  const ask = task?.ask ?? session?.ask;
  if (ask) return { kind: 'ask', timeoutSeconds: ask.timeoutSeconds };
  const hasRules = (task?.rules?.length ?? 0) + (session?.rules?.length ?? 0) > 0;
  return hasRules ? { kind: 'fail', why: 'no rule answers it' } : { kind: 'fail' };
}

/**
 * The secret values the task's rules sent as answers (`answerFromSecret` without `totp`), read again so the task's
 * final answer can be redacted of them wherever the agent repeats one. TOTP codes are left: they expire in 30 s,
 * and hiding every six-digit number would damage results.
 */
export async function secretAnswers(
  answered: readonly AnsweredGuardrail[],
  task: Guardrails | undefined,
  session: Guardrails | undefined,
  readSecret: SiteCredentialResolver,
): Promise<string[]> {
  const rules = [...(task?.rules ?? []), ...(session?.rules ?? [])];
  const values: string[] = [];
  for (const { question, answeredBy } of answered) {
    if (answeredBy !== 'rule') continue;
    const rule = firstMatching(rules, question);
    const from = rule instanceof SlowPattern ? undefined : rule?.answerFromSecret;
    if (!from || from.totp) continue;
    const value = (await readSecret(from.secret))[from.field];
    if (value) values.push(value);
  }
  return values;
}
