/**
 * Variables: a workflow input's `vars` fill `{{name}}` placeholders in the fields that say what to do and where
 * (`session.startingPoint`, each task's `taskDetails` and `startingPoint`), before any session exists. The
 * validator (./schema/workflow-input.ts) runs this, so the start Lambda, the local runner and the CLI all see the
 * substituted input, and a placeholder that no variable fills, or one that is not a placeholder at all (`{{ }}`,
 * `{{a b}}`, an unclosed `{{name`), is `Webrun.InvalidInput` naming the field and the placeholder.
 *
 * Pure and dependency-free: it runs in the start Lambda.
 */
import type { Issue, PathKey } from './schema/core';

/**
 * Names that cannot be variables: JavaScript gives them a meaning on every object, and code on a value's way
 * drops them (valibot's records skip them) or, for `__proto__`, sets an object's prototype with them
 * (`Object.assign`, as the local batch's States.JsonMerge does). They are refused by name, so a variable never
 * silently vanishes between the file and the filled-in task.
 */
export const RESERVED_VAR_NAMES: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/**
 * A variable's name: a letter or `_`, then letters, digits, `_`, `.` or `-` (at most 100 characters), and not one
 * of RESERVED_VAR_NAMES. Without flags, so the same pattern serves in the generated JSON Schema.
 */
export const VAR_NAME = /^(?!(?:__proto__|constructor|prototype)$)[A-Za-z_][A-Za-z0-9_.-]{0,99}$/;
/** How a name is written in a placeholder, reserved or not (a reserved one is named as such, not as malformed). */
const PLACEHOLDER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,99}$/;

export const NOT_A_VAR_NAME = 'is not a variable name (letters, digits, _ . -, starting with a letter or _; at most 100 characters)';
export const RESERVED_VAR_NAME = 'is a reserved name: __proto__, constructor and prototype cannot be variable names (JavaScript gives them a meaning on every object); rename it';

/** What is wrong with `name` as a variable's name, or undefined. */
export function varNameProblem(name: string): string | undefined {
  if (RESERVED_VAR_NAMES.includes(name)) return RESERVED_VAR_NAME;
  return VAR_NAME.test(name) ? undefined : NOT_A_VAR_NAME;
}

/** What a variable may hold: text, or a number or boolean written as its JSON text. */
export type VarValue = string | number | boolean;
export type Vars = Readonly<Record<string, VarValue>>;

/** One `{{...}}` found in a text: where it starts, how long it is, and its name when it is a well-formed placeholder. */
interface Found {
  readonly at: number;
  readonly length: number;
  readonly raw: string;
  readonly name?: string;
}

/** Every `{{` in `text`, as placeholders (with a name) or malformed ones (without). Linear in the text's length. */
function scan(text: string): Found[] {
  const found: Found[] = [];
  let from = 0;
  for (let open = text.indexOf('{{', from); open !== -1; open = text.indexOf('{{', from)) {
    const close = text.indexOf('}}', open + 2);
    if (close === -1) {
      // Unclosed: what follows, up to the end of its word, names it in the message.
      const rest = /^\{\{[^\s{}]*/.exec(text.slice(open))?.[0] ?? '{{';
      found.push({ at: open, length: text.length - open, raw: rest });
      break;
    }
    const raw = text.slice(open, close + 2);
    const name = raw.slice(2, -2).trim();
    found.push({ at: open, length: raw.length, raw, name: PLACEHOLDER_NAME.test(name) ? name : undefined });
    from = close + 2;
  }
  return found;
}

/** The names of the well-formed placeholders in `text`, in order of appearance, without repeats. */
export function placeholderNames(text: string): string[] {
  return [...new Set(scan(text).flatMap((f) => (f.name === undefined ? [] : [f.name])))];
}

const show = (raw: string) => JSON.stringify(raw.length > 60 ? `${raw.slice(0, 59)}…` : raw);

/**
 * `text` with each placeholder replaced by its variable, or the problem with it: the malformed placeholders first,
 * then the unknown ones (each named once).
 */
export function fillPlaceholders(text: string, vars: Vars): { text: string } | { problem: string } {
  const found = scan(text);
  if (found.length === 0) return { text };
  const malformed = found.filter((f) => f.name === undefined);
  if (malformed.length > 0) {
    return { problem: `has a malformed placeholder ${show(malformed[0].raw)}: a placeholder is {{name}}, the name made of letters, digits, _ . - and starting with a letter or _` };
  }
  const reserved = found.find((f) => RESERVED_VAR_NAMES.includes(f.name as string));
  if (reserved) return { problem: `has a placeholder ${show(reserved.raw)} whose name ${RESERVED_VAR_NAME}` };
  const unknown = [...new Set(found.map((f) => f.name as string).filter((name) => !Object.hasOwn(vars, name)))];
  if (unknown.length > 0) {
    const known = Object.keys(vars);
    const offer = known.length === 0 ? 'the input has no "vars"' : `vars has ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}`;
    return { problem: `has ${unknown.length === 1 ? 'an unknown placeholder' : 'unknown placeholders'} ${unknown.map((n) => `{{${n}}}`).join(', ')} (${offer})` };
  }
  let out = '';
  let at = 0;
  for (const f of found) {
    out += text.slice(at, f.at) + String(vars[f.name as string]);
    at = f.at + f.length;
  }
  return { text: out + text.slice(at) };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The fields placeholders may appear in, as paths into the input (only those that are strings). */
function templatedFields(input: Json): PathKey[][] {
  const paths: PathKey[][] = [];
  if (isObject(input.session) && typeof input.session.startingPoint === 'string') paths.push(['session', 'startingPoint']);
  if (Array.isArray(input.tasks)) {
    input.tasks.forEach((task, i) => {
      if (!isObject(task)) return;
      for (const field of ['taskDetails', 'startingPoint']) if (typeof task[field] === 'string') paths.push(['tasks', i, field]);
    });
  }
  return paths;
}

/**
 * The input with every placeholder filled from `vars` (a copy; the input is not changed), or the issues: one per
 * field whose placeholders are malformed or unknown. `vars` must already be valid (names and values).
 */
export function fillInput(input: Json, vars: Vars): { value: Json; issues: Issue[] } {
  const issues: Issue[] = [];
  let value = input;
  for (const path of templatedFields(input)) {
    const [first, second, third] = path;
    const text = (third === undefined ? (input[first] as Json)[second] : ((input[first] as unknown[])[second as number] as Json)[third]) as string;
    const filled = fillPlaceholders(text, vars);
    if ('problem' in filled) {
      issues.push({ path, message: filled.problem });
      continue;
    }
    if (filled.text === text) continue;
    if (value === input) value = { ...input, session: isObject(input.session) ? { ...input.session } : input.session, tasks: Array.isArray(input.tasks) ? [...input.tasks] : input.tasks };
    if (third === undefined) (value[first] as Json)[second] = filled.text;
    else {
      const tasks = value[first] as unknown[];
      tasks[second as number] = { ...(tasks[second as number] as Json), [third]: filled.text };
    }
  }
  return { value, issues };
}
