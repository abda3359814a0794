/**
 * The toolkit both contracts are written with: the execution input (./workflow-input.ts) and webrun.config.json
 * (lib/config.ts). It wraps valibot so that every schema speaks the project's language: an issue names its field
 * as a path (`tasks[1].maxDuration`, `session["a b"]`) and says what is wrong in plain words
 * (`must be between 1000 and 300000, got 0`), whatever the library's own wording would be.
 *
 * Runs in the start Lambda: valibot is tree-shaken to the pieces used here (a few KB), and nothing in this folder
 * imports aws-cdk-lib or Node-only modules beyond `Buffer`.
 */
import * as v from 'valibot';

/** One key of a path into a JSON value: an object key or an array index. */
export type PathKey = string | number;

/** One problem found in a value: where (a path from the value's root) and what. */
export interface Issue {
  readonly path: readonly PathKey[];
  readonly message: string;
}

/** The JSON Schema a custom (non-structural) schema stands for in the generated files (bin/schema.ts). */
export type JsonSchemaFragment = Readonly<Record<string, unknown>>;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * How a value is named in a message. Strings are not quoted unless asked (`quoteStrings`): a value in the wrong
 * field may be someone's password, and messages end up in logs and in the execution's cause.
 */
export function describe(value: unknown, quoteStrings = false): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return quoteStrings ? `string ${quote(value)}` : 'a string';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** A string as JSON, cut to 100 characters. */
export function quote(value: string): string {
  return JSON.stringify(value.slice(0, 100));
}

const PLAIN_KEY = /^[A-Za-z_$][\w$-]*$/;

/**
 * A path as a field name: `tasks[1].maxDuration`. A key that is empty or not a plain name ("", "a.b", "x y") is
 * quoted (`tasks[0]["output.type"]`), so the field is never blank or ambiguous. `base` is a field the path
 * continues (`schedules[0].input` + `tasks[0]`); with neither, the result is ''.
 */
export function formatPath(path: readonly PathKey[], base = ''): string {
  let out = base;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (PLAIN_KEY.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${quote(key)}]`;
  }
  return out;
}

/**
 * A visible character. A text made only of white space or invisible characters (zero-width spaces and joiners,
 * word joiner, byte-order mark, soft hyphen, bidi and other format controls, fillers, variation selectors) is
 * refused as empty. No flags, so the same pattern serves in the generated JSON Schema.
 */
export const VISIBLE =
  /[^\s\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0]/;

const nonEmptyString = v.pipe(
  v.string((issue) => `must be a string, got ${describe(issue.input)}`),
  v.regex(VISIBLE, 'must not be empty'),
);

/** A string with at least one visible character. */
export function text() {
  return nonEmptyString;
}

/** How many characters `text` has, counted as JSON Schema counts them: in code points (an emoji is one, not two). */
export function charCount(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point written as two UTF-16 units.
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/**
 * At most `max` characters, counted in code points as the generated JSON Schema's `maxLength` counts them (valibot's
 * maxLength counts UTF-16 units, so 15,000 emoji passed the editor and failed here as 30000); the message's count is
 * in the same unit. It is valibot's maxLength otherwise, so the JSON Schema still gets its `maxLength`.
 */
export function maxChars(max: number) {
  const action = v.maxLength<string, number, (issue: v.MaxLengthIssue<string, number>) => string>(max, (issue) => `must be at most ${max} characters, got ${issue.received}`);
  return {
    ...action,
    '~run'(dataset, config) {
      // Code points never outnumber UTF-16 units: only a string longer in units can be too long.
      if (dataset.typed && dataset.value.length > max) {
        const count = charCount(dataset.value);
        if (count > max) v._addIssue(action, 'length', dataset, config, { received: `${count}` });
      }
      return dataset;
    },
  } satisfies typeof action;
}

/** A string with at least one visible character and at most `max` characters (code points). */
export function textUpTo(max: number) {
  return v.pipe(nonEmptyString, maxChars(max));
}

/** An integer from `min` to `max`. */
export function integer(min: number, max: number) {
  const notInteger = (issue: v.BaseIssue<unknown>) => `must be an integer, got ${describe(issue.input)}`;
  const range = (issue: v.BaseIssue<unknown>) => `must be between ${min} and ${max}, got ${String(issue.input)}`;
  return v.pipe(v.number(notInteger), v.integer(notInteger), v.minValue(min, range), v.maxValue(max, range));
}

/** The URL in `value`, or undefined if it is not one. */
export function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** An absolute http: or https: URL. */
export function httpUrl() {
  return v.pipe(
    v.string((issue) => `must be a URL string, got ${describe(issue.input)}`),
    v.check((s) => parseUrl(s) !== undefined, (issue) => `is not a valid URL: ${quote(issue.input)}`),
    v.check(
      (s) => { const url = parseUrl(s); return url === undefined || url.protocol === 'https:' || url.protocol === 'http:'; },
      (issue) => `must be an http(s) URL, got ${parseUrl(issue.input)?.protocol ?? '?'}`,
    ),
  );
}

/** An array of at most `maxItems` items, each checked by `item`. */
export function list<const S extends v.GenericSchema>(item: S, maxItems: number, what = 'strings') {
  return v.pipe(
    v.array(item, (issue) => `must be an array of ${what}, got ${describe(issue.input)}`),
    v.maxLength(maxItems, (issue) => `must have at most ${maxItems} items, got ${issue.received}`),
  );
}

/** One of a fixed set of strings or numbers. */
export function oneOf<const T extends readonly (string | number)[]>(options: T) {
  return v.picklist(options, (issue) => `must be one of ${options.join(', ')}, got ${JSON.stringify(issue.input)?.slice(0, 100) ?? describe(issue.input)}`);
}

/**
 * A schema checked by a function rather than by structure (a JSON Schema, an event pattern, ...), with the JSON
 * Schema that stands for it in the generated files.
 */
export function custom<T>(guard: (value: unknown) => value is T, notValid: (value: unknown) => string, jsonSchema: JsonSchemaFragment) {
  return Object.assign(v.custom<T>(guard, (issue) => notValid(issue.input)), { jsonSchema });
}

/** The JSON Schema a custom schema stands for (see `custom`), if `schema` is one. */
export function jsonSchemaOf(schema: unknown): JsonSchemaFragment | undefined {
  return isPlainObject(schema) && isPlainObject(schema.jsonSchema) ? schema.jsonSchema : undefined;
}

/** Any JSON object, named in a refusal as `must be <what>, got ...`. */
export function anObject(what: string) {
  return custom<Record<string, unknown>>(isPlainObject, (value) => `must be ${what}, got ${describe(value)}`, { type: 'object' });
}

/**
 * The fields of an object, and no others. Keys starting with `$` (`$schema`, `$comment`) are accepted where
 * declared but not listed among the allowed fields. A missing field is refused with what its own schema says of
 * nothing (`must be a string, got nothing`).
 */
export function fields<const E extends v.ObjectEntries>(entries: E) {
  const allowed = Object.keys(entries).filter((key) => !key.startsWith('$')).join(', ');
  return v.strictObject(entries, (issue) => {
    if (issue.expected === 'never') return `is not a known field (allowed: ${allowed})`;
    const key = issue.path?.[issue.path.length - 1]?.key;
    const field = typeof key === 'string' ? entries[key] : undefined;
    return (field && firstMessage(field, undefined)) ?? 'is required';
  });
}

/** A JSON object (not an array, not null) with these fields and no others. */
export function strict<const E extends v.ObjectEntries>(entries: E, what = 'an object') {
  return v.pipe(anObject(what), fields(entries));
}

function firstMessage(schema: v.GenericSchema, value: unknown): string | undefined {
  const result = v.safeParse(schema, value);
  return result.success ? undefined : result.issues[0].message;
}

/** valibot's path items for `path` inside `root`, so a check can report an issue deep inside the value it checks. */
export function pathItems(root: unknown, path: readonly PathKey[]): [v.IssuePathItem, ...v.IssuePathItem[]] | undefined {
  const items: v.IssuePathItem[] = [];
  let input = root;
  for (const key of path) {
    const value: unknown = Array.isArray(input) ? input[Number(key)] : isPlainObject(input) ? input[String(key)] : undefined;
    items.push({ type: 'unknown', origin: 'value', input, key, value });
    input = value;
  }
  const [first, ...rest] = items;
  return first === undefined ? undefined : [first, ...rest];
}

/** The path of a valibot issue, as keys. */
function keysOf(issue: v.BaseIssue<unknown>): PathKey[] {
  return (issue.path ?? []).map((item) => (typeof item.key === 'number' ? item.key : String(item.key)));
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly issues: readonly Issue[] };

/**
 * Checks `value` against `schema`: the typed, defaulted value, or every issue in the order the schema declares
 * its fields (one per field: the first thing wrong with it).
 */
export function check<S extends v.GenericSchema>(schema: S, value: unknown): Checked<v.InferOutput<S>> {
  const result = v.safeParse(schema, value);
  if (result.success) return { ok: true, value: result.output };
  const seen = new Set<string>();
  const issues: Issue[] = [];
  for (const issue of result.issues) {
    const path = keysOf(issue);
    const field = formatPath(path);
    if (seen.has(field)) continue;
    seen.add(field);
    issues.push({ path, message: issue.message });
  }
  return { ok: false, issues };
}

/** Re-reports, inside a check, the issues a nested schema found in `root` (their paths are relative to it). */
export function reportIssues(addIssue: (info: { message: string; path?: [v.IssuePathItem, ...v.IssuePathItem[]] }) => void, root: unknown, issues: readonly Issue[]): void {
  for (const issue of issues) addIssue({ message: issue.message, path: pathItems(root, issue.path) });
}

/**
 * Where `value` first holds a container (object or array) more than `maxDepth` levels deep (the root is level 1),
 * or undefined. Iterative, so no input can exhaust the stack, and it stops at the first such place.
 */
export function tooDeep(value: unknown, maxDepth: number): PathKey[] | undefined {
  const stack: Array<{ node: unknown; path: PathKey[] }> = [{ node: value, path: [] }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { node, path } = next;
    if (node === null || typeof node !== 'object') continue;
    if (path.length >= maxDepth) return path;
    const children: Array<[PathKey, unknown]> = Array.isArray(node) ? node.map((item, i) => [i, item]) : Object.entries(node);
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i][1], path: [...path, children[i][0]] });
  }
  return undefined;
}

/**
 * The schema that checks `key` inside a value checked by `schema`: null for a key the schema does not declare,
 * undefined where it declares no structure (a leaf, a free-form value, or a key of the wrong kind).
 */
function childSchema(schema: unknown, key: PathKey): unknown {
  let node = schema;
  for (let hops = 0; hops < 100 && isPlainObject(node); hops++) {
    if (Array.isArray(node.pipe)) {
      // A pipe's structure is its last schema (the ones before it only guard it).
      node = [...node.pipe].reverse().find((item) => isPlainObject(item) && item.kind === 'schema');
    } else if (node.type === 'optional' || node.type === 'nullish' || node.type === 'exact_optional') {
      node = node.wrapped;
    } else if (isPlainObject(node.entries)) {
      // An index where an object is declared: the value is not of the declared kind, so it has no declared inside.
      if (typeof key !== 'string') return undefined;
      return Object.hasOwn(node.entries, key) ? node.entries[key] : null;
    } else if (node.type === 'array') {
      return typeof key === 'number' ? node.item : undefined;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The field a path lies in, as the schema declares it: the path itself, cut where it enters a value whose inside
 * the schema does not describe (`tasks[0].outputSchema.properties.a...` → `tasks[0].outputSchema`), or just after
 * a key it does not declare.
 */
export function declaredField(schema: unknown, path: readonly PathKey[]): PathKey[] {
  let node = schema;
  for (let i = 0; i < path.length; i++) {
    const child = childSchema(node, path[i]);
    if (child === undefined) return path.slice(0, i);
    if (child === null) return path.slice(0, i + 1);
    node = child;
  }
  return [...path];
}
