/**
 * Guardrail questions answered by rules: which rule a question matches (the task's rules first, then the
 * session's), and what the workflow does: answer it (text, or a field of a `webrun-sfn/` secret, optionally a TOTP
 * code), fail the run, or ask a person. Pure, but for reading a secret.
 */
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

const DEFAULT_MAX_ANSWERS = 5;

/** Whether a rule's `when` (text, case-insensitive, or `/regex/flags`) matches the question. */
export function matches(when: string, question: string): boolean {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(when);
  if (m) return new RegExp(m[1], m[2]).test(question);
  return question.toLowerCase().includes(when.toLowerCase());
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
  const rule = [...(task?.rules ?? []), ...(session?.rules ?? [])].find((r) => matches(r.when, question));
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
    const from = rules.find((r) => matches(r.when, question))?.answerFromSecret;
    if (!from || from.totp) continue;
    const value = (await readSecret(from.secret))[from.field];
    if (value) values.push(value);
  }
  return values;
}
