/**
 * Redaction of secret values (the API key, site credentials) from text that may leave the Lambda: error messages
 * built from the API's answers, and task outcomes whose text the agent may have filled with what it typed.
 */
import type { TaskOutcome } from './types';

const MARK = '[redacted]';

/**
 * The most of a guardrail question or a failure reason that is kept. They go into the state, the failure's cause and
 * the output: text of any length from the API would break Step Functions' 256 KiB state or 32,768-character cause
 * (States.DataLimitExceeded, which no Catch handles: the results would be lost with it). Here because redaction must
 * know a text cut there: a secret the cut split in two is hidden by its start.
 */
export const MAX_API_TEXT_CHARS = 2_000;

/** What ends a text cut short. */
export const CUT_MARK = '…';

/**
 * The ways a value may come back written: as is; JSON-escaped, as a structured answer's `message` holds the JSON text
 * of its `output` or an error quotes the request (`"` and `\` escaped), also with every non-ASCII character as
 * `\uXXXX` (Python's json.dumps) and `/` as `\/` (PHP's json_encode); and percent-encoded, as in a URL the agent
 * visited or a form it posted (encodeURIComponent, `+` for spaces, the form encoding, lowercase hex).
 */
function writtenForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const ascii = (hex: (h: string) => string) => json.replace(/[^\x20-\x7e]/g, (c) => `\\u${hex(c.charCodeAt(0).toString(16).padStart(4, '0'))}`);
  const jsons = [json, ascii((h) => h), ascii((h) => h.toUpperCase())];
  const forms = [value, ...jsons, ...jsons.map((j) => j.replace(/\//g, '\\/'))];
  const percents = [new URLSearchParams([['', value]]).toString().slice(1)];
  try {
    const uri = encodeURIComponent(value);
    percents.push(uri, uri.replace(/%20/g, '+'));
  } catch {
    // A lone surrogate has no encodeURIComponent form (URIError); the form encoding above writes it as U+FFFD.
  }
  forms.push(...percents, ...percents.map((p) => p.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())));
  return [...new Set(forms)];
}

/**
 * Values shorter than this are hidden only as whole words, never inside a longer word or number, and never in an
 * object's keys: a field such as `"country": "us"` would otherwise turn `status` into `stat[redacted]` and
 * `users` into `[redacted]ers`. Whole, they are still hidden: "shipped to us" becomes "shipped to [redacted]".
 */
export const MIN_INNER_CHARS = 4;

/** A written form of a value; `short`: the value is under MIN_INNER_CHARS, so only a whole word is hidden. */
interface Form {
  text: string;
  short: boolean;
}

/** Every written form of the values worth hiding. */
function hideable(values: readonly string[]): Form[] {
  const forms = new Map<string, boolean>();
  for (const value of values) {
    if (value === '') continue;
    const short = value.length < MIN_INNER_CHARS;
    // A form both short and long (one value's encoding is another's plain text) is hidden wherever the long one is.
    for (const text of writtenForms(value)) forms.set(text, (forms.get(text) ?? true) && short);
  }
  return [...forms].map(([text, short]) => ({ text, short }));
}

// A word goes on through `-`, `.` and `/` between letters or digits: `us` is not a word of `us-east-1` or `en-us`.
const ENDS_IN_WORD = /(?:[\p{L}\p{N}_]|[\p{L}\p{N}][-./])$/u;
const STARTS_WORD = /^(?:[\p{L}\p{N}_]|[-./][\p{L}\p{N}])/u;

/**
 * Whether `text[start, end)` is not part of a longer word: no letter, digit or `_` right before or after it, nor a
 * `-`, `.` or `/` joining it to one (a region, a language tag, a host name).
 */
function standsAlone(text: string, start: number, end: number): boolean {
  // Up to four code units either side: a joiner and a whole character even when it is a surrogate pair.
  return !ENDS_IN_WORD.test(text.slice(Math.max(0, start - 4), start)) && !STARTS_WORD.test(text.slice(end, end + 4));
}

/**
 * `text` with every occurrence of every form replaced by the mark. Occurrences that overlap are hidden as one span,
 * so neither a value that contains another nor one form that overlaps another is half replaced, whatever the order.
 */
function hide(text: string, forms: readonly Form[], spans: Array<[number, number]> = []): string {
  for (const { text: form, short } of forms) {
    for (let at = text.indexOf(form); at !== -1; at = text.indexOf(form, at + 1)) {
      if (!short || standsAlone(text, at, at + form.length)) spans.push([at, at + form.length]);
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = '';
  let done = 0;
  for (const [start, end] of spans) {
    if (end <= done) continue;
    // Overlapping the span just hidden: hide the rest of it with that span. Two values side by side stay two marks.
    if (start < done) {
      done = end;
      continue;
    }
    out += text.slice(done, start) + MARK;
    done = end;
  }
  return out + text.slice(done);
}

export function redactText(text: string, values: readonly string[]): string {
  return hide(text, hideable(values));
}

/**
 * The shortest start of a secret hidden at a cut: shorter ones are as likely the end of an ordinary word ("plea|se"
 * against a secret starting "se"), and a few characters of a long secret give little away.
 */
export const MIN_CUT_PREFIX_CHARS = 4;

/**
 * A question or reason redacted; one cut at MAX_API_TEXT_CHARS also of the start of a form that the cut left at its
 * end (`typed PW-9f3k…`): the client cuts before a later step learns which values to hide (an earlier task's login,
 * a rule's answer). A start of MIN_CUT_PREFIX_CHARS or more is hidden (of a short value, any start that stands alone).
 */
function redactCutText(text: string, forms: readonly Form[]): string {
  if (text.length !== MAX_API_TEXT_CHARS || !text.endsWith(CUT_MARK)) return hide(text, forms);
  const body = text.slice(0, -CUT_MARK.length);
  let longest = 0;
  for (const { text: form, short } of forms) {
    const shortest = short ? 1 : MIN_CUT_PREFIX_CHARS;
    for (let k = Math.min(form.length - 1, body.length); k > longest && k >= shortest; k--) {
      if (body.endsWith(form.slice(0, k)) && (!short || standsAlone(body, body.length - k, body.length))) {
        longest = k;
        break;
      }
    }
  }
  return hide(body, forms, longest > 0 ? [[body.length - longest, body.length]] : []) + CUT_MARK;
}

/**
 * A copy of a JSON value with every string redacted; the value itself when nothing is hidden. Keys are hidden of
 * values of MIN_INNER_CHARS or more only (the API key, a login: an agent may key a result by an account), so a
 * short value never damages a result's structure; two keys that become the same are numbered, never merged.
 */
export function redactDeep<T>(value: T, values: readonly string[]): T {
  return deepWith(value, hideable(values));
}

function deepWith<T>(value: T, forms: readonly Form[]): T {
  if (forms.length === 0) return value;
  const keyForms = forms.filter((f) => !f.short);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return hide(v, forms);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      const taken = new Set(entries.map(([k]) => k));
      return Object.fromEntries(
        entries.map(([k, x]) => {
          const hidden = hide(k, keyForms);
          if (hidden === k) return [k, walk(x)];
          let key = hidden;
          for (let n = 2; taken.has(key); n++) key = `${hidden} (${n})`;
          taken.add(key);
          return [key, walk(x)];
        }),
      );
    }
    return v;
  };
  return walk(value) as T;
}

/**
 * A task outcome with the values hidden from what the API said (the result's data, a guardrail question, a failure
 * reason), never from the outcome's own fields: a short secret must not turn `kind` into `[redacted]ind`.
 */
export function redactOutcome(outcome: TaskOutcome, values: readonly string[]): TaskOutcome {
  const forms = hideable(values);
  if (forms.length === 0) return outcome;
  switch (outcome.kind) {
    case 'completed':
      return { ...outcome, data: deepWith(outcome.data, forms) };
    case 'guardrail':
      return { ...outcome, question: redactCutText(outcome.question, forms) };
    case 'failed':
      return { ...outcome, reason: redactCutText(outcome.reason, forms) };
    default:
      return outcome;
  }
}
