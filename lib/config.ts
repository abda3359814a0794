/**
 * The deployment's one configuration file, `webrun.config.json` at the repo root (another path with
 * `cdk synth -c webrun:config=<path>`): typed, validated and defaulted here, read once by bin/app.ts (and by
 * the CLI for the stack name). A wrong value fails `cdk synth` with a message naming the file and the field,
 * e.g. `webrun.config.json: schedules[0].expression: ...`, one line per problem.
 * Every field is documented in the README.
 *
 * Pure Node: no aws-cdk-lib import, so the CLI can read the stack name without loading CDK.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import * as v from 'valibot';
import {
  anObject,
  check,
  custom,
  describe,
  formatPath,
  integer,
  isPlainObject,
  type Issue,
  oneOf,
  parseUrl,
  type PathKey,
  quote,
  reportIssues,
  strict,
  text,
  tooDeep,
} from '../lambdas/shared/schema/core';
import { BATCH_LIMITS } from '../lambdas/shared/batch-contract';
import { CompletionModes, RESULT_LIMITS } from '../lambdas/shared/contract';
import { MAX_INPUT_DEPTH, WorkflowInputSchema } from '../lambdas/shared/schema/workflow-input';
import { EMAIL } from './checks';
import { LambdaLogLevel } from './lambda-log-level';

export const DEFAULT_CONFIG_FILE = 'webrun.config.json';
export const CONFIG_CONTEXT_KEY = 'webrun:config';
export const DEFAULT_STACK_NAME = 'WebrunSfn';

export const LOG_LEVELS = ['OFF', 'ERROR', 'FATAL', 'ALL'] as const;
export const LAMBDA_LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LambdaLogLevelName = (typeof LAMBDA_LOG_LEVELS)[number];
/** The construct's LambdaLogLevel for a validated config value (`lambdaLogLevel`). */
export const lambdaLogLevelOf = (name: LambdaLogLevelName): LambdaLogLevel => LambdaLogLevel[name];
export const COMPLETION_MODES = [CompletionModes.poll, CompletionModes.webhook] as const;

/** The retention periods CloudWatch Logs accepts, in days (`logs.RetentionDays`; 9999 = never expire). */
export const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653, 9999] as const;

/** A reference to an event field inside a trigger's input string: `<$.detail.object.key>`. */
export const EVENT_REFERENCE = /<(\$(?:\.[A-Za-z0-9_-]+|\[\d+\])+)>/g;

/**
 * A secret name that does not end like a complete ARN's random suffix ("-" and six characters, as "prod-webrun"):
 * given such a name, the stack's partial ARN is taken by Secrets Manager for a complete one, and no Lambda finds the
 * secret ("Do not end your secret name with a hyphen followed by six characters", CreateSecret).
 */
export const SECRET_NAME_WITHOUT_ARN_SUFFIX = /^(?!.*-[^-]{6}$)/;

/** Why a secret name would not be found by its partial ARN, or undefined. */
export function secretNameSuffixProblem(name: string): string | undefined {
  if (SECRET_NAME_WITHOUT_ARN_SUFFIX.test(name)) return undefined;
  return `must not end in a hyphen and six characters ("${name.slice(-7)}"): Secrets Manager takes them for the random suffix of a ` +
    `complete ARN and does not find the secret; rename the secret, got ${JSON.stringify(name)}`;
}

/**
 * A cron field as EventBridge Scheduler takes it: its values, their names, and the forms only it allows. The rules
 * are those of the EventBridge cron reference (eb-cron-expressions): its table of values and wildcards per field,
 * and its note that a "#" expression is the only one in its field ("3#1,6#3" is not valid).
 */
interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Whether "/" increments are allowed: the reference lists them in every field but day-of-week. */
  increments: boolean;
  /** Whether the field wraps round (all but the year), so a backwards range (`22-2`) can be offered as two (`22-23,0-2`). */
  cyclic: boolean;
  /**
   * The forms that stand for the whole field, never for one item of a list (`?`, and the field's L, W and #): the
   * `value` groups must be values of the field, `nth` the week of the month.
   */
  whole?: RegExp;
}

const CRON_FIELDS: readonly CronField[] = [
  { name: 'minutes', min: 0, max: 59, increments: true, cyclic: true },
  { name: 'hours', min: 0, max: 23, increments: true, cyclic: true },
  // L: the month's last day; LW: its last weekday; 15W: the weekday nearest the 15th.
  { name: 'day-of-month', min: 1, max: 31, increments: true, cyclic: true, whole: /^(?:\?|L|LW|(?<value>\d+)W)$/ },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'], increments: true, cyclic: true },
  // L: the week's last day; 6L: the month's last Friday; 2#1: its first Monday.
  { name: 'day-of-week', min: 1, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'], increments: false, cyclic: true, whole: /^(?:\?|L|(?<value>\w+)L|(?<value2>\w+)#(?<nth>\d+))$/ },
  { name: 'year', min: 1970, max: 2199, increments: true, cyclic: false },
];

/** The number `text` stands for in `field` (a number in its range, or one of its names), or undefined. */
function cronValue(field: CronField, text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) >= field.min && Number(text) <= field.max ? Number(text) : undefined;
  const index = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return index < 0 ? undefined : field.min + index;
}

/** Checks one item of a cron field's list: a value, `*`, a range, and (where the field takes them) an increment. */
function cronItemProblem(field: CronField, item: string): string | undefined {
  const names = field.names ? ` or ${field.names[0]}-${field.names[field.names.length - 1]}` : '';
  const takes = `the ${field.name} field takes ${field.min}-${field.max}${names}, ranges${field.increments ? ', lists and increments' : ' and lists'}, got "${item}"`;
  const [base, step, ...rest] = item.split('/');
  if (step !== undefined && !field.increments) return `the ${field.name} field takes no increments ("/"): list the days instead, got "${item}"`;
  if (rest.length > 0 || (step !== undefined && !(/^\d+$/.test(step) && Number(step) >= 1))) return takes;
  if (base === '*') return undefined;
  const ends = base.split('-');
  const values = ends.map((end) => cronValue(field, end));
  if (ends.length > 2 || values.some((value) => value === undefined)) return takes;
  const [from, to] = ends;
  if (values.length === 2 && (values[0] as number) > (values[1] as number)) {
    // The reference documents ranges from low to high only; one over the field's end is written as two.
    const last = field.names && !/^\d+$/.test(to) ? field.names[field.names.length - 1] : String(field.max);
    const first = field.names && !/^\d+$/.test(to) ? field.names[0] : String(field.min);
    // Each part written as a range only where it spans more than one value (SAT-SUN: SAT,SUN, not SAT-SAT,SUN-SUN).
    const part = (a: string, b: string) => (a === b ? a : `${a}-${b}`);
    const split = field.cyclic && step === undefined ? `: write ${part(from, last)},${part(first, to)}` : '';
    return `the ${field.name} range "${base}" runs backwards${split}`;
  }
  return undefined;
}

/** Checks one cron field: a whole-field form (`?`, `L`, `15W`, `6L`, `2#1`) or a list of items (`1,15`, `MON-FRI`, `0/5`, `*`). */
function cronFieldProblem(field: CronField, text: string): string | undefined {
  const whole = field.whole?.exec(text);
  if (whole) {
    const value = whole.groups?.value ?? whole.groups?.value2;
    if (value !== undefined && cronValue(field, value) === undefined) return cronItemProblem(field, text);
    const nth = whole.groups?.nth;
    if (nth !== undefined && !(Number(nth) >= 1 && Number(nth) <= 5)) return `the ${field.name} field's "#" takes the week of the month, 1-5, got "${text}"`;
    return undefined;
  }
  for (const item of text.split(',')) {
    // "?", L, W and # stand for the whole field, never for one item of a list ("2#1,6#3", "1,L").
    if (field.whole?.test(item)) return `"${item}" must be the whole ${field.name} field, got "${text}"`;
    const problem = cronItemProblem(field, item);
    if (problem) return problem;
  }
  return undefined;
}

/** Checks an EventBridge Scheduler expression; returns a problem or undefined. */
export function scheduleExpressionProblem(expression: string): string | undefined {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (rate) {
    const [, value, unit] = rate;
    if (Number(value) < 1) return 'a rate must be at least 1';
    // As EventBridge takes them: rate(1 hour) and rate(5 hours), never rate(1 hours) or rate(5 hour).
    const singular = unit.replace(/s$/, '');
    const wanted = Number(value) === 1 ? singular : `${singular}s`;
    return unit === wanted ? undefined : `a rate of ${value} takes the unit "${wanted}": rate(${value} ${wanted})`;
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron) {
    const fields = cron[1].trim().split(/\s+/);
    if (fields.length !== 6) return `a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), this one has ${fields.length}`;
    const [, , dom, , dow] = fields;
    if ((dom === '?') === (dow === '?')) return 'exactly one of day-of-month and day-of-week must be "?"';
    for (const [i, field] of CRON_FIELDS.entries()) {
      const problem = cronFieldProblem(field, fields[i]);
      if (problem) return problem;
    }
    return undefined;
  }
  const at = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/.exec(expression);
  if (at) {
    // Built and read back: Date.parse rolls 2030-02-30 over to March 2 and 24:00 to the next day; EventBridge refuses them.
    const [year, month, day, hour, minute, second] = at.slice(1).map(Number);
    const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
    const same = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day && date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second;
    return same ? undefined : `${expression.slice(3, -1)} is not a valid date and time`;
  }
  return 'must be rate(<n> minutes|hours|days), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss)';
}

function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The schema of webrun.config.json: the one place its fields are listed. Types, defaults, messages and
// schema/webrun-config.schema.json (`npm run schema`) come from it.

const comment = v.optional(v.pipe(v.unknown(), v.description('A note for people; ignored.')));
const bool = v.boolean((issue) => `must be true or false, got ${describe(issue.input, true)}`);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/;
const name = v.pipe(
  text(),
  v.regex(NAME, (issue) => `must be 1-48 letters, digits, "-" or "_", starting with a letter or digit, got ${JSON.stringify(issue.input)}`),
  v.description('Letters, digits, "-" and "_" (1-48); unique in its list.'),
);
const description = v.optional(v.pipe(text(), v.description('Shown in the AWS console (cut to 512 characters with the name).')));

/** The input with every `<$.path>` reference replaced by `sample`, for validation at synth. */
function withSampleValues(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(EVENT_REFERENCE, 'sample');
  if (Array.isArray(value)) return value.map(withSampleValues);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, item]) => [k, withSampleValues(item)]));
  return value;
}

/**
 * A workflow input inside the config, checked with the state machine's own input schema; its issues are reported
 * under the field that holds it (`schedules[0].input.tasks[0].taskDetails`). `prepare` turns it into what the
 * execution will receive (a trigger's event references filled in).
 */
function workflowInputField(prepare: (input: Record<string, unknown>) => unknown) {
  return v.pipe(
    custom<Record<string, unknown>>(isPlainObject, (value) => `must be a workflow input object with "tasks", got ${describe(value)}`, { $ref: '#/$defs/WorkflowInput' }),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const result = check(WorkflowInputSchema, prepare(dataset.value));
      if (!result.ok) reportIssues(addIssue, dataset.value, result.issues);
    }),
  );
}

/** Names must be unique in their list: the second use of a name is reported at its `name`. */
function uniqueNames(list: unknown[], addIssue: Parameters<typeof reportIssues>[0]): void {
  const seen = new Set<string>();
  const issues: Issue[] = [];
  list.forEach((item, i) => {
    if (!isPlainObject(item) || typeof item.name !== 'string') return;
    if (seen.has(item.name)) issues.push({ path: [i, 'name'], message: `${JSON.stringify(item.name)} is used twice` });
    seen.add(item.name);
  });
  reportIssues(addIssue, list, issues);
}

function listOf<const S extends v.GenericSchema>(item: S, what: string) {
  return v.optional(
    v.pipe(
      v.array(item, (issue) => `must be an array, got ${describe(issue.input)}`),
      v.rawCheck(({ dataset, addIssue }) => { if (Array.isArray(dataset.value)) uniqueNames(dataset.value, addIssue); }),
      v.description(what),
    ),
    [],
  );
}

const ScheduleSchema = v.pipe(
  strict({
    $comment: comment,
    name,
    expression: v.pipe(
      text(),
      v.trim(),
      v.check((e) => scheduleExpressionProblem(e) === undefined, (issue) => `${scheduleExpressionProblem(issue.input)}, got ${JSON.stringify(issue.input)}`),
      v.description('An EventBridge Scheduler expression: rate(1 hour), cron(0 9 ? * MON-FRI *) or at(2030-01-01T09:00:00).'),
    ),
    timezone: v.optional(
      v.pipe(
        text(),
        v.check(validTimeZone, (issue) => `is not an IANA time zone (like "Europe/Paris"), got ${JSON.stringify(issue.input)}`),
        v.description('IANA time zone of cron and at expressions. Default: UTC.'),
      ),
    ),
    input: v.optional(workflowInputField((input) => input)),
    inputFile: v.optional(v.pipe(text(), v.description('A JSON file holding the input, relative to this config file (instead of "input").'))),
    description,
    enabled: v.optional(v.pipe(bool, v.description('Default: true.')), true),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    const s = dataset.value;
    if (isPlainObject(s) && (s.input === undefined) === (s.inputFile === undefined)) addIssue({ message: 'needs exactly one of "input" and "inputFile"' });
  }),
  v.description('Starts the workflow on a schedule (EventBridge Scheduler).'),
);

/**
 * Where an event pattern value goes wrong: values are arrays of match values, or objects of those (EventBridge's
 * rule syntax). Its depth is bounded first, so the walk stays short.
 */
/** EventBridge's content filters: what each takes. https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html */
const MATCHERS: Record<string, (value: unknown) => boolean> = {
  prefix: (x) => typeof x === 'string' || isCaseless(x),
  suffix: (x) => typeof x === 'string' || isCaseless(x),
  'equals-ignore-case': (x) => typeof x === 'string',
  wildcard: (x) => typeof x === 'string',
  cidr: isCidrBlock,
  exists: (x) => typeof x === 'boolean',
  numeric: isNumericFilter,
  'anything-but': (x) =>
    isScalar(x) ||
    (Array.isArray(x) && x.length > 0 && x.every(isScalar)) ||
    (isPlainObject(x) && Object.keys(x).length === 1 && ['prefix', 'suffix', 'equals-ignore-case', 'wildcard'].some((k) => k in x && MATCHERS[k](x[k]))),
};
/** What a content filter takes, said in its refusal where `"numeric" cannot take an array` would not help. */
const MATCHER_FORMS: Record<string, string> = {
  numeric: 'an operator and a number (["=", 300], [">", 0]) or a range from ">" or ">=" a number to "<" or "<=" a larger one ([">", 0, "<=", 5])',
  cidr: 'an IPv4 or IPv6 CIDR block like "10.0.0.0/24" or "2001:db8::/32"',
};

/**
 * EventBridge's numeric filter, as its rule compiler (event-ruler) parses it: `=`, `<`, `<=`, `>` or `>=` and a
 * number, or a lower bound (`>`, `>=`) then an upper one (`<`, `<=`) above it. Anything else fails the deploy.
 */
function isNumericFilter(x: unknown): boolean {
  const isNumber = (n: unknown) => typeof n === 'number' && Number.isFinite(n);
  if (!Array.isArray(x)) return false;
  if (x.length === 2) return ['=', '<', '<=', '>', '>='].includes(x[0]) && isNumber(x[1]);
  return x.length === 4 && ['>', '>='].includes(x[0]) && isNumber(x[1]) && ['<', '<='].includes(x[2]) && isNumber(x[3]) && x[1] < x[3];
}

/** An IPv4 or IPv6 address, a "/" and a prefix length the address has bits for (`10.0.0.0/24`, `2001:db8::/32`). */
function isCidrBlock(x: unknown): boolean {
  // No zone index ("fe80::1%eth0"): net.isIP takes one, a CIDR block has none.
  const block = typeof x === 'string' ? /^([^/%]+)\/(\d{1,3})$/.exec(x) : null;
  const version = block ? isIP(block[1]) : 0;
  return block !== null && version !== 0 && Number(block[2]) <= (version === 4 ? 32 : 128);
}

function isScalar(x: unknown): boolean {
  return x === null || ['string', 'number', 'boolean'].includes(typeof x);
}
function isCaseless(x: unknown): boolean {
  return isPlainObject(x) && Object.keys(x).length === 1 && typeof x['equals-ignore-case'] === 'string';
}

/** Why one element of a pattern's array matches nothing EventBridge knows: a value, or a one-key content filter. */
function matcherProblem(element: unknown): string | undefined {
  if (isScalar(element)) return undefined;
  const known = Object.keys(MATCHERS).join(', ');
  if (!isPlainObject(element) || Object.keys(element).length !== 1) return `must be a value or a content filter with one operator (${known}), got ${describe(element, true)}`;
  const [operator, value] = Object.entries(element)[0];
  if (!MATCHERS[operator]) return `"${operator}" is not an EventBridge content filter (${known})`;
  if (!MATCHERS[operator](value)) {
    const form = MATCHER_FORMS[operator];
    // The value as written (cut, like quote()), so "[">","x"]" shows what is wrong with it.
    return form ? `"${operator}" takes ${form}, got ${JSON.stringify(value)?.slice(0, 100)}` : `"${operator}" cannot take ${describe(value, true)}`;
  }
  return undefined;
}

function patternIssues(value: unknown): Issue[] {
  if (tooDeep(value, MAX_INPUT_DEPTH)) return [{ path: [], message: `is nested too deeply (more than ${MAX_INPUT_DEPTH} levels)` }];
  const issues: Issue[] = [];
  const stack: Array<{ node: unknown; path: PathKey[] }> = [{ node: value, path: [] }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { node, path } = next;
    if (Array.isArray(node)) {
      if (node.length === 0) issues.push({ path, message: 'must not be an empty array (it would match nothing)' });
      node.forEach((element, i) => {
        const problem = matcherProblem(element);
        if (problem) issues.push({ path: [...path, i], message: problem });
      });
    } else if (isPlainObject(node)) {
      const entries = Object.entries(node);
      if (entries.length === 0) issues.push({ path, message: 'must not be an empty object' });
      else for (let i = entries.length - 1; i >= 0; i--) stack.push({ node: entries[i][1], path: [...path, entries[i][0]] });
    } else {
      issues.push({ path, message: `must be an array of values to match (e.g. ["aws.s3"]) or an object of such arrays, got ${describe(node, true)}` });
    }
  }
  return issues;
}

const patternValue = v.optional(
  v.pipe(
    custom<unknown[] | Record<string, unknown>>(
      (value): value is unknown[] | Record<string, unknown> => Array.isArray(value) || isPlainObject(value),
      (value) => `must be an array of values to match (e.g. ["aws.s3"]) or an object of such arrays, got ${describe(value, true)}`,
      { anyOf: [{ type: 'array', minItems: 1 }, { type: 'object', minProperties: 1 }] },
    ),
    v.rawCheck(({ dataset, addIssue }) => { if (dataset.typed) reportIssues(addIssue, dataset.value, patternIssues(dataset.value)); }),
  ),
);

const notAPattern = (value: unknown) => `must be a non-empty EventBridge event pattern object, got ${describe(value)}`;
/** An EventBridge event pattern, in EventBridge's JSON form (`detail-type`, not CDK's `detailType`). */
const EventPatternSchema = v.pipe(
  anObject('a non-empty EventBridge event pattern object'),
  strict({
    version: patternValue,
    id: patternValue,
    'detail-type': patternValue,
    source: patternValue,
    account: patternValue,
    time: patternValue,
    region: patternValue,
    resources: patternValue,
    detail: patternValue,
  }),
  v.minEntries(1, (issue) => notAPattern(issue.input)),
  v.description('An EventBridge event pattern for the default bus, in EventBridge\'s JSON form: { "source": ["com.example"] }.'),
);

/** EventBridge's quota on an event pattern's size, in characters of its JSON (adjustable, 2,048 by default). */
const EVENT_PATTERN_MAX_CHARS = 2_048;
/** The longest Input or InputTemplate an EventBridge rule target takes. */
const RULE_INPUT_MAX_CHARS = 8_192;
/** The most event fields an EventBridge input transformer reads (its InputPathsMap entries). */
const RULE_INPUT_MAX_REFERENCES = 100;

const TriggerSchema = v.pipe(
  strict({
    $comment: comment,
    name,
    eventPattern: EventPatternSchema,
    input: v.optional(
      v.pipe(
        // Event references are filled in by EventBridge: they are checked as a sample value.
        workflowInputField((input) => (tooDeep(input, MAX_INPUT_DEPTH) ? input : withSampleValues(input))),
        v.description('A fixed execution input; strings in it may hold event fields as <$.detail.object.key>.'),
      ),
    ),
    inputPath: v.optional(
      v.pipe(
        text(),
        v.regex(/^\$(\.[A-Za-z0-9_-]+|\[\d+\])*$/, (issue) => `must be a JSONPath into the event like "$.detail", got ${JSON.stringify(issue.input)}`),
        v.description('The part of the event that is the execution input, when no "input" is given. Default: $.detail.'),
      ),
    ),
    description,
    enabled: v.optional(v.pipe(bool, v.description('Default: true.')), true),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    const t = dataset.value;
    if (isPlainObject(t) && t.input !== undefined && t.inputPath !== undefined) addIssue({ message: 'give either "input" or "inputPath", not both' });
    // A larger pattern synthesizes, and fails the deploy. It lands in the template as it is given (CDK only renames
    // detailType back to detail-type), so its compact JSON is what EventBridge measures. A pattern nested too deeply is
    // refused above, and not measured (JSON.stringify could overflow).
    const pattern = isPlainObject(t) && isPlainObject(t.eventPattern) && !tooDeep(t.eventPattern, MAX_INPUT_DEPTH) ? t.eventPattern : undefined;
    const patternChars = pattern ? JSON.stringify(pattern).length : 0;
    if (patternChars > EVENT_PATTERN_MAX_CHARS) {
      reportIssues(addIssue, t, [{ path: ['eventPattern'], message: `is ${patternChars} characters of JSON, over EventBridge's quota of ${EVENT_PATTERN_MAX_CHARS} characters for an event pattern (split it into two triggers, or match fewer values)` }]);
    }
    // The rule's target gets the input as its Input or InputTemplate, each at most 8,192 characters (an event
    // reference `<$.detail.x>` becomes the shorter `<detail-x>`, so this JSON's length is the upper bound).
    // An input nested thousands deep is refused above, and would overflow JSON.stringify: it is not measured.
    const measured = isPlainObject(t) && t.input !== undefined && !tooDeep(t.input, MAX_INPUT_DEPTH);
    const chars = measured ? JSON.stringify(t.input).length : 0;
    if (chars > RULE_INPUT_MAX_CHARS) {
      reportIssues(addIssue, t, [{ path: ['input'], message: `is ${chars} characters of JSON; an EventBridge rule passes at most ${RULE_INPUT_MAX_CHARS} to its target (put a larger input in the event, and use "inputPath")` }]);
    }
    // Each distinct event reference is one entry of the target's InputPathsMap, which holds at most 100.
    const references = measured ? new Set([...JSON.stringify(t.input).matchAll(EVENT_REFERENCE)].map((m) => m[1])).size : 0;
    if (references > RULE_INPUT_MAX_REFERENCES) {
      reportIssues(addIssue, t, [{ path: ['input'], message: `refers to ${references} event fields; an EventBridge rule fills in at most ${RULE_INPUT_MAX_REFERENCES} (use "inputPath" to pass the event part whole)` }]);
    }
  }),
  v.description('Starts the workflow on matching events of the default EventBridge bus.'),
);

const percentage = v.pipe(
  v.number((issue) => `must be a number from 0 to 100, got ${describe(issue.input, true)}`),
  v.minValue(0, (issue) => `must be a number from 0 to 100, got ${String(issue.input)}`),
  v.maxValue(100, (issue) => `must be a number from 0 to 100, got ${String(issue.input)}`),
);

/** The batch state machine (lib/webrun-batch.ts): off unless enabled. */
const BatchConfigSchema = v.pipe(
  strict({
    enabled: v.optional(v.pipe(bool, v.description('Deploy the batch state machine (a Distributed Map of workflow runs). Default: false.')), false),
    maxConcurrency: v.optional(
      v.pipe(
        integer(1, BATCH_LIMITS.maxConcurrency),
        v.description(`Child executions (so webrun sessions) at once, unless a batch says otherwise: keep it at or under your webrun session limit. Default: ${BATCH_LIMITS.defaultMaxConcurrency}.`),
      ),
      BATCH_LIMITS.defaultMaxConcurrency,
    ),
    toleratedFailurePercentage: v.optional(
      v.pipe(percentage, v.description(`The share of items (0-100) that may fail before a batch fails, unless a batch says otherwise. Default: ${BATCH_LIMITS.defaultToleratedFailurePercentage}.`)),
      BATCH_LIMITS.defaultToleratedFailurePercentage,
    ),
  }),
  v.description('Batches: one workflow template run for many items (docs/BATCHES.md).'),
);

/** webrun.config.json. Every field is documented in the README, section Configuration. */
export const WebrunConfigSchema = v.pipe(
  strict(
    {
      $schema: v.optional(v.pipe(v.string((issue) => `must be a string, got ${describe(issue.input)}`), v.description('The JSON Schema of this file, for editors; ignored.'))),
      $comment: comment,
      stackName: v.optional(
        v.pipe(
          text(),
          v.regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, (issue) => `must start with a letter, hold only letters, digits and "-", and be at most 128 characters, got ${JSON.stringify(issue.input)}`),
          v.description(`The CloudFormation stack name. Default: ${DEFAULT_STACK_NAME}.`),
        ),
        DEFAULT_STACK_NAME,
      ),
      apiKeySecretName: v.optional(
        v.pipe(
          text(),
          v.regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/, (issue) => `is not a valid secret name (1-512 letters, digits and /_+=.@-), got ${JSON.stringify(issue.input)}`),
          v.regex(SECRET_NAME_WITHOUT_ARN_SUFFIX, (issue) => secretNameSuffixProblem(issue.input) ?? ''),
          v.description('An existing Secrets Manager secret holding the webrun API key. Default: the stack creates one.'),
        ),
      ),
      baseUrl: v.optional(
        v.pipe(
          text(),
          v.check((url) => parseUrl(url) !== undefined, (issue) => `is not a URL: ${JSON.stringify(issue.input)}`),
          v.check((url) => (parseUrl(url)?.protocol ?? 'https:') === 'https:', (issue) => `must be https (the API key travels to it), got ${parseUrl(issue.input)?.protocol}`),
          v.description('Base URL of the webrun API (https). Default: https://connect.webrun.ai.'),
        ),
      ),
      alarmEmail: v.optional(
        v.pipe(
          text(),
          v.regex(EMAIL, (issue) => `is not an e-mail address: ${quote(issue.input)}`),
          v.description('An e-mail address subscribed to the alarm topic. Default: no subscription.'),
        ),
      ),
      questionEmail: v.optional(
        v.pipe(
          text(),
          v.regex(EMAIL, (issue) => `is not an e-mail address: ${quote(issue.input)}`),
          v.description('An e-mail address told of each guardrail question that waits for a person (guardrails.ask), through an SNS topic the stack creates. The mail carries the session\'s live view link. Default: the EventBridge event only.'),
        ),
      ),
      costAlarmUsd: v.optional(
        v.pipe(
          v.number('must be a number of US dollars'),
          v.check((n) => Number.isFinite(n) && n > 0, 'must be a positive number of US dollars'),
          v.description('An alarm when the tasks of the last 24 hours cost more than this many US dollars in all (the CostUsd metric). Default: no cost alarm.'),
        ),
      ),
      logLevel: v.optional(v.pipe(oneOf(LOG_LEVELS), v.description('State machine log level. Default: ERROR.')), 'ERROR'),
      includeExecutionData: v.optional(v.pipe(bool, v.description('Whether state machine logs include execution input and output (results may be private). Default: false.')), false),
      lambdaLogLevel: v.optional(v.pipe(oneOf(LAMBDA_LOG_LEVELS), v.description('Lambda (Powertools) log level. Default: INFO.')), 'INFO'),
      logRetentionDays: v.optional(v.pipe(oneOf(RETENTION_DAYS), v.description('Retention of every log group, in days. Default: 30.')), 30),
      completion: v.optional(
        v.pipe(
          oneOf(COMPLETION_MODES),
          v.description('How a pending task\'s end is learned: "poll" (Wait + poll Lambda, no public endpoint) or "webhook" (a doorbell on a public Lambda Function URL, polling as the fallback). Default: poll.'),
        ),
        'poll',
      ),
      inlineResultBytes: v.optional(
        v.pipe(
          integer(0, RESULT_LIMITS.inlineBudgetBytes),
          v.description(`Task results whose JSON is larger go to the result bucket and the output carries a resultRef. Default: ${RESULT_LIMITS.defaultInlineResultBytes}.`),
        ),
        RESULT_LIMITS.defaultInlineResultBytes,
      ),
      resultRetentionDays: v.optional(
        v.pipe(integer(1, 3650), v.description(`Days a stored result is kept before it expires. Default: ${RESULT_LIMITS.defaultRetentionDays}.`)),
        RESULT_LIMITS.defaultRetentionDays,
      ),
      batch: v.optional(BatchConfigSchema, {}),
      schedules: listOf(ScheduleSchema, 'EventBridge Scheduler schedules that start the workflow.'),
      triggers: listOf(TriggerSchema, 'EventBridge rules on the default bus that start the workflow.'),
    },
    'a JSON object',
  ),
  v.title('webrun-sfn deployment configuration (webrun.config.json)'),
  v.description('Read by cdk synth (bin/app.ts) and by the CLI for the stack name. Every field is documented in README.md, section Configuration.'),
);

type ConfigOutput = v.InferOutput<typeof WebrunConfigSchema>;
type Meta = '$schema' | '$comment';

/** A schedule, validated: `inputFile` (when used) is resolved against the config file's folder and `input` read from it. */
export type ParsedSchedule = Readonly<Omit<ConfigOutput['schedules'][number], Meta | 'input'> & { input: Record<string, unknown> }>;
/** A trigger, validated: `inputPath` is set (default `$.detail`) exactly when `input` is not. */
export type ParsedTrigger = Readonly<Omit<ConfigOutput['triggers'][number], Meta>>;
/**
 * A schedule as a construct takes it (`WebrunTriggers`, `WebrunStack`): `enabled` is true unless set, and the input
 * is given as an object (`inputFile` is the config file's own).
 */
export type ScheduleConfig = Readonly<Omit<ParsedSchedule, 'enabled' | 'inputFile'> & { enabled?: boolean }>;
/** A trigger as a construct takes it: `enabled` is true unless set. */
export type TriggerConfig = Readonly<Omit<ParsedTrigger, 'enabled'> & { enabled?: boolean }>;
export type EventPatternConfig = ParsedTrigger['eventPattern'];
/** The deployment's configuration, validated and defaulted. */
export type WebrunConfig = Readonly<Omit<ConfigOutput, Meta | 'schedules' | 'triggers'> & { schedules: readonly ParsedSchedule[]; triggers: readonly ParsedTrigger[] }>;

// ---------------------------------------------------------------------------------------------------------------

/** One problem of a configuration file: the field (empty for the file itself) and what is wrong with it. */
export interface ConfigIssue {
  readonly field: string;
  readonly problem: string;
}

/** At most this many problems are listed in a ConfigFileError's message (all are in `issues`). */
const MAX_LISTED_ISSUES = 50;

/** A configuration file with problems; the message names the file and lists each problem on its own line. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
  /** The first problem's field and text. */
  readonly field: string;
  readonly problem: string;

  constructor(readonly source: string, readonly issues: readonly [ConfigIssue, ...ConfigIssue[]]) {
    const lines = issues.slice(0, MAX_LISTED_ISSUES).map((i) => `${source}: ${i.field ? `${i.field}: ` : ''}${i.problem}`);
    if (issues.length > MAX_LISTED_ISSUES) lines.push(`${source}: and ${issues.length - MAX_LISTED_ISSUES} more problems`);
    super(lines.join('\n'));
    this.field = issues[0].field;
    this.problem = issues[0].problem;
  }
}

function configError(source: string, issues: readonly ConfigIssue[]): ConfigFileError {
  const [first = { field: '', problem: 'is not a valid configuration' }, ...rest] = issues;
  return new ConfigFileError(source, [first, ...rest]);
}

/** Reads a schedule's `inputFile` and checks it as a workflow input; its problems name the file. */
function readScheduleInput(baseDir: string, file: string, at: readonly PathKey[], issues: ConfigIssue[]): Record<string, unknown> | undefined {
  const field = formatPath(at);
  let text: string;
  try {
    text = readFileSync(path.resolve(baseDir, file), 'utf8');
  } catch (err) {
    issues.push({ field, problem: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    return undefined;
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    issues.push({ field, problem: `${file} is not valid JSON: ${(err as Error).message}` });
    return undefined;
  }
  const result = check(WorkflowInputSchema, input);
  if (!result.ok) {
    for (const issue of result.issues) issues.push({ field: formatPath(issue.path, `${field} (${file})`), problem: issue.message });
    return undefined;
  }
  return isPlainObject(input) ? input : undefined;
}

/**
 * Validates a parsed configuration and applies defaults. Throws ConfigFileError listing every problem.
 * @param source how the file is named in messages (e.g. `webrun.config.json`)
 * @param baseDir where `inputFile`s are resolved from (the config file's folder)
 */
export function parseConfig(raw: unknown, source = DEFAULT_CONFIG_FILE, baseDir = process.cwd()): WebrunConfig {
  const result = check(WebrunConfigSchema, raw);
  const issues: ConfigIssue[] = result.ok ? [] : result.issues.map((i) => ({ field: formatPath(i.path), problem: i.message }));
  // Input files are read only for schedules that use one (and not "input" as well), and whose name is a string.
  const fileInputs = new Map<number, Record<string, unknown>>();
  const schedules = isPlainObject(raw) && Array.isArray(raw.schedules) ? raw.schedules : [];
  schedules.forEach((s: unknown, i) => {
    if (!isPlainObject(s) || s.input !== undefined || typeof s.inputFile !== 'string') return;
    const at = ['schedules', i, 'inputFile'];
    if (issues.some((issue) => issue.field === formatPath(at))) return;
    const input = readScheduleInput(baseDir, s.inputFile, at, issues);
    if (input) fileInputs.set(i, input);
  });
  if (!result.ok || issues.length > 0) throw configError(source, issues);
  const { $schema: _schema, $comment: _comment, schedules: scheduleList, triggers, ...settings } = result.value;
  return {
    ...settings,
    schedules: scheduleList.map(({ $comment: _c, input, inputFile, ...schedule }, i) => ({
      ...schedule,
      input: input ?? fileInputs.get(i) ?? {},
      inputFile: inputFile === undefined ? undefined : path.resolve(baseDir, inputFile),
    })),
    triggers: triggers.map(({ $comment: _c, ...trigger }) => ({ ...trigger, inputPath: trigger.input === undefined ? (trigger.inputPath ?? '$.detail') : undefined })),
  };
}

export interface LoadConfigOptions {
  /** An explicit path (from `-c webrun:config=<path>` or `--config`), resolved against `cwd`: it must exist. */
  readonly path?: string;
  /** Where the default `webrun.config.json` is looked for; a missing default file means all defaults. */
  readonly defaultDir?: string;
  readonly cwd?: string;
}

/** Reads and validates the config file. Throws ConfigFileError naming the file and each bad field. */
export function loadConfig(options: LoadConfigOptions = {}): WebrunConfig {
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.path !== undefined && options.path !== '';
  const file = explicit ? path.resolve(cwd, options.path as string) : path.resolve(options.defaultDir ?? cwd, DEFAULT_CONFIG_FILE);
  const source = explicit ? (options.path as string) : DEFAULT_CONFIG_FILE;
  if (!existsSync(file)) {
    if (explicit) throw new ConfigFileError(source, [{ field: '', problem: `file not found (${file})` }]);
    return parseConfig({}, source, path.dirname(file));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigFileError(source, [{ field: '', problem: `is not valid JSON: ${(err as Error).message}` }]);
  }
  return parseConfig(raw, source, path.dirname(file));
}
