/**
 * The deployment's one configuration file, `webrun.config.json` at the repo root (another path with
 * `cdk synth -c webrun:config=<path>`): typed, validated and defaulted here, read once by bin/app.ts (and by
 * the CLI for the stack name). A wrong value fails `cdk synth` with a message naming the file and the field,
 * e.g. `webrun.config.json: schedules[0].expression: ...`. Every field is documented in the README.
 *
 * Pure Node: no aws-cdk-lib import, so the CLI can read the stack name without loading CDK.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isWebrunError } from '../lambdas/shared/errors';
import { validateWorkflowInput } from '../lambdas/shared/input';

export const DEFAULT_CONFIG_FILE = 'webrun.config.json';
export const CONFIG_CONTEXT_KEY = 'webrun:config';
export const DEFAULT_STACK_NAME = 'WebrunSfn';

export type StateMachineLogLevel = 'OFF' | 'ERROR' | 'FATAL' | 'ALL';
export type LambdaLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** The retention periods CloudWatch Logs accepts, in days (`logs.RetentionDays`; 9999 = never expire). */
export const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653, 9999] as const;

export interface ScheduleConfig {
  /** Letters, digits, `-` and `_`; unique among the schedules. Names the construct and the schedule's description. */
  readonly name: string;
  /** An EventBridge Scheduler expression: `rate(1 hour)`, `cron(0 9 ? * MON-FRI *)` or `at(2030-01-01T09:00:00)`. */
  readonly expression: string;
  /** IANA time zone for cron and at expressions. @default 'UTC' (Scheduler's default) */
  readonly timezone?: string;
  /** The execution input, validated with the state machine's own validator (given inline or read from `inputFile`). */
  readonly input: Record<string, unknown>;
  /** The file the input was read from, resolved against the config file's folder, when `inputFile` was used. */
  readonly inputFile?: string;
  readonly description?: string;
  /** @default true */
  readonly enabled: boolean;
}

/** EventBridge's own event pattern keys (as in the console and the docs: `detail-type`, not `detailType`). */
export const EVENT_PATTERN_KEYS = ['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail'] as const;
export type EventPatternConfig = Partial<Record<(typeof EVENT_PATTERN_KEYS)[number], unknown>>;

export interface TriggerConfig {
  /** Letters, digits, `-` and `_`; unique among the triggers. */
  readonly name: string;
  /** An EventBridge event pattern for the default bus, in EventBridge's JSON form. */
  readonly eventPattern: EventPatternConfig;
  /**
   * A fixed execution input. Strings in it may reference event fields as `<$.detail.object.key>`; they are
   * filled in by an EventBridge input transformer.
   */
  readonly input?: Record<string, unknown>;
  /** The part of the event that is the execution input, when no `input` is given. @default '$.detail' */
  readonly inputPath?: string;
  readonly description?: string;
  /** @default true */
  readonly enabled: boolean;
}

export interface WebrunConfig {
  /** @default 'WebrunSfn' */
  readonly stackName: string;
  /** Name of an existing Secrets Manager secret holding the webrun API key. @default the stack creates one */
  readonly apiKeySecretName?: string;
  /** Base URL of the webrun API (https). @default 'https://connect.webrun.ai' */
  readonly baseUrl?: string;
  /** E-mail address subscribed to the alarm topic (confirm the subscription mail). @default no subscription */
  readonly alarmEmail?: string;
  /** State machine log level. @default 'ERROR' */
  readonly logLevel: StateMachineLogLevel;
  /** Whether the state machine logs include execution input/output (task results may be private). @default false */
  readonly includeExecutionData: boolean;
  /** Lambda (Powertools) log level. @default 'INFO' */
  readonly lambdaLogLevel: LambdaLogLevel;
  /** Retention of every log group, in days (one of RETENTION_DAYS). @default 30 */
  readonly logRetentionDays: number;
  readonly schedules: readonly ScheduleConfig[];
  readonly triggers: readonly TriggerConfig[];
}

/** A configuration problem; the message names the file and the field. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
  constructor(readonly source: string, readonly field: string, readonly problem: string) {
    super(`${source}: ${field ? `${field}: ` : ''}${problem}`);
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`);

const TOP_FIELDS = ['$comment', 'stackName', 'apiKeySecretName', 'baseUrl', 'alarmEmail', 'logLevel', 'includeExecutionData', 'lambdaLogLevel', 'logRetentionDays', 'schedules', 'triggers'];
const SCHEDULE_FIELDS = ['$comment', 'name', 'expression', 'timezone', 'input', 'inputFile', 'description', 'enabled'];
const TRIGGER_FIELDS = ['$comment', 'name', 'eventPattern', 'input', 'inputPath', 'description', 'enabled'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** A reference to an event field inside a trigger's input string: `<$.detail.object.key>`. */
export const EVENT_REFERENCE = /<(\$(?:\.[A-Za-z0-9_-]+|\[\d+\])+)>/g;

/** Collects the checks of one file so every message names it. */
class Checker {
  constructor(readonly source: string, readonly baseDir: string) {}

  fail(field: string, problem: string): never {
    throw new ConfigFileError(this.source, field, problem);
  }

  known(obj: Json, allowed: readonly string[], at: string): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) this.fail(at ? `${at}.${key}` : key, `is not a known field (allowed: ${allowed.filter((k) => k !== '$comment').join(', ')})`);
    }
  }

  string(obj: Json, key: string, at: string, required: true): string;
  string(obj: Json, key: string, at: string, required?: false): string | undefined;
  string(obj: Json, key: string, at: string, required = false): string | undefined {
    const v = obj[key];
    const field = at ? `${at}.${key}` : key;
    if (v === undefined || v === null) {
      if (required) this.fail(field, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || v.trim() === '') this.fail(field, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  boolean(obj: Json, key: string, at: string, fallback: boolean): boolean {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(at ? `${at}.${key}` : key, `must be true or false, got ${describe(v)}`);
    return v;
  }

  oneOf<T extends string | number>(obj: Json, key: string, allowed: readonly T[], fallback: T): T {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (!allowed.includes(v as T)) this.fail(key, `must be one of ${allowed.join(', ')}, got ${describe(v)}`);
    return v as T;
  }

  name(obj: Json, at: string, seen: Set<string>): string {
    const name = this.string(obj, 'name', at, true);
    if (!NAME.test(name)) this.fail(`${at}.name`, `must be 1-48 letters, digits, "-" or "_", starting with a letter or digit, got ${JSON.stringify(name)}`);
    if (seen.has(name)) this.fail(`${at}.name`, `${JSON.stringify(name)} is used twice`);
    seen.add(name);
    return name;
  }

  /** Runs the state machine's input validator and re-words its error under `field`. */
  workflowInput(input: unknown, field: string): void {
    try {
      validateWorkflowInput(input);
    } catch (err) {
      if (isWebrunError(err) && err.name === 'Webrun.InvalidInput') {
        const inner = (err as { field?: string }).field;
        const problem = err.message.slice((inner ?? '').length + 2);
        this.fail(inner && inner !== 'input' ? `${field}.${inner}` : field, inner ? problem : err.message);
      }
      throw err;
    }
  }
}

/** Checks an EventBridge Scheduler expression; returns a problem or undefined. */
export function scheduleExpressionProblem(expression: string): string | undefined {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (rate) return Number(rate[1]) >= 1 ? undefined : 'a rate must be at least 1';
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron) {
    const fields = cron[1].trim().split(/\s+/);
    if (fields.length !== 6) return `a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), this one has ${fields.length}`;
    if (!fields.every((f) => /^[0-9A-Za-z*?,\-/#L]+$/.test(f))) return 'a cron field holds a character cron does not accept';
    const [, , dom, , dow] = fields;
    if ((dom === '?') === (dow === '?')) return 'exactly one of day-of-month and day-of-week must be "?"';
    return undefined;
  }
  const at = /^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$/.exec(expression);
  if (at) return Number.isNaN(Date.parse(`${at[1]}Z`)) ? `${at[1]} is not a valid date and time` : undefined;
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

function readJsonFile(c: Checker, file: string, field: string): unknown {
  const full = path.resolve(c.baseDir, file);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    c.fail(field, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    c.fail(field, `${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function parseSchedule(c: Checker, raw: unknown, at: string, seen: Set<string>): ScheduleConfig {
  if (!isObject(raw)) c.fail(at, `must be an object, got ${describe(raw)}`);
  c.known(raw, SCHEDULE_FIELDS, at);
  const name = c.name(raw, at, seen);
  const expression = c.string(raw, 'expression', at, true).trim();
  const problem = scheduleExpressionProblem(expression);
  if (problem) c.fail(`${at}.expression`, `${problem}, got ${JSON.stringify(expression)}`);
  const timezone = c.string(raw, 'timezone', at);
  if (timezone !== undefined && !validTimeZone(timezone)) c.fail(`${at}.timezone`, `is not an IANA time zone (like "Europe/Paris"), got ${JSON.stringify(timezone)}`);
  const inputFile = c.string(raw, 'inputFile', at);
  if ((raw.input === undefined) === (inputFile === undefined)) c.fail(at, 'needs exactly one of "input" and "inputFile"');
  let input: unknown;
  let inputField: string;
  if (inputFile !== undefined) {
    inputField = `${at}.inputFile`;
    input = readJsonFile(c, inputFile, inputField);
    inputField = `${inputField} (${inputFile})`;
  } else {
    inputField = `${at}.input`;
    input = raw.input;
  }
  if (!isObject(input)) c.fail(inputField, `must be a workflow input object with "tasks", got ${describe(input)}`);
  c.workflowInput(input, inputField);
  return {
    name,
    expression,
    timezone,
    input,
    inputFile: inputFile === undefined ? undefined : path.resolve(c.baseDir, inputFile),
    description: c.string(raw, 'description', at),
    enabled: c.boolean(raw, 'enabled', at, true),
  };
}

/** Event pattern values are arrays of match values, or objects of those (EventBridge's rule syntax). */
function checkPatternValue(c: Checker, value: unknown, field: string): void {
  if (Array.isArray(value)) {
    if (value.length === 0) c.fail(field, 'must not be an empty array (it would match nothing)');
    return;
  }
  if (isObject(value)) {
    if (Object.keys(value).length === 0) c.fail(field, 'must not be an empty object');
    for (const [k, v] of Object.entries(value)) checkPatternValue(c, v, `${field}.${k}`);
    return;
  }
  c.fail(field, `must be an array of values to match (e.g. ["aws.s3"]) or an object of such arrays, got ${describe(value)}`);
}

/** The input with every `<$.path>` reference replaced by `sample`, for validation at synth. */
function withSampleValues(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(EVENT_REFERENCE, 'sample');
  if (Array.isArray(value)) return value.map(withSampleValues);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withSampleValues(v)]));
  return value;
}

function parseTrigger(c: Checker, raw: unknown, at: string, seen: Set<string>): TriggerConfig {
  if (!isObject(raw)) c.fail(at, `must be an object, got ${describe(raw)}`);
  c.known(raw, TRIGGER_FIELDS, at);
  const name = c.name(raw, at, seen);
  const pattern = raw.eventPattern;
  if (!isObject(pattern) || Object.keys(pattern).length === 0) c.fail(`${at}.eventPattern`, `must be a non-empty EventBridge event pattern object, got ${describe(pattern)}`);
  c.known(pattern, EVENT_PATTERN_KEYS, `${at}.eventPattern`);
  for (const [k, v] of Object.entries(pattern)) checkPatternValue(c, v, `${at}.eventPattern.${k}`);
  const inputPath = c.string(raw, 'inputPath', at);
  if (raw.input !== undefined && inputPath !== undefined) c.fail(at, 'give either "input" or "inputPath", not both');
  if (inputPath !== undefined && !/^\$(\.[A-Za-z0-9_-]+|\[\d+\])*$/.test(inputPath)) c.fail(`${at}.inputPath`, `must be a JSONPath into the event like "$.detail", got ${JSON.stringify(inputPath)}`);
  let input: Json | undefined;
  if (raw.input !== undefined) {
    if (!isObject(raw.input)) c.fail(`${at}.input`, `must be a workflow input object with "tasks", got ${describe(raw.input)}`);
    input = raw.input;
    c.workflowInput(withSampleValues(input), `${at}.input`);
  }
  return {
    name,
    eventPattern: pattern as EventPatternConfig,
    input,
    inputPath: input === undefined ? (inputPath ?? '$.detail') : undefined,
    description: c.string(raw, 'description', at),
    enabled: c.boolean(raw, 'enabled', at, true),
  };
}

function list(c: Checker, raw: Json, key: string): unknown[] {
  const v = raw[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) c.fail(key, `must be an array, got ${describe(v)}`);
  return v;
}

/**
 * Validates a parsed configuration and applies defaults.
 * @param source how the file is named in messages (e.g. `webrun.config.json`)
 * @param baseDir where `inputFile`s are resolved from (the config file's folder)
 */
export function parseConfig(raw: unknown, source = DEFAULT_CONFIG_FILE, baseDir = process.cwd()): WebrunConfig {
  const c: Checker = new Checker(source, baseDir);
  if (!isObject(raw)) c.fail('', `must hold a JSON object, got ${describe(raw)}`);
  c.known(raw, TOP_FIELDS, '');
  const stackName = c.string(raw, 'stackName', '') ?? DEFAULT_STACK_NAME;
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) c.fail('stackName', `must start with a letter and hold only letters, digits and "-", got ${JSON.stringify(stackName)}`);
  const apiKeySecretName = c.string(raw, 'apiKeySecretName', '');
  if (apiKeySecretName !== undefined && !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(apiKeySecretName)) c.fail('apiKeySecretName', `is not a valid secret name (letters, digits and /_+=.@-), got ${JSON.stringify(apiKeySecretName)}`);
  const baseUrl = c.string(raw, 'baseUrl', '');
  if (baseUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(baseUrl);
    } catch {
      c.fail('baseUrl', `is not a URL: ${JSON.stringify(baseUrl)}`);
    }
    if (url.protocol !== 'https:') c.fail('baseUrl', `must be https (the API key travels to it), got ${url.protocol}`);
  }
  const alarmEmail = c.string(raw, 'alarmEmail', '');
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) c.fail('alarmEmail', `is not an e-mail address: ${JSON.stringify(alarmEmail)}`);
  const scheduleNames = new Set<string>();
  const triggerNames = new Set<string>();
  return {
    stackName,
    apiKeySecretName,
    baseUrl,
    alarmEmail,
    logLevel: c.oneOf<StateMachineLogLevel>(raw, 'logLevel', ['OFF', 'ERROR', 'FATAL', 'ALL'], 'ERROR'),
    includeExecutionData: c.boolean(raw, 'includeExecutionData', '', false),
    lambdaLogLevel: c.oneOf<LambdaLogLevel>(raw, 'lambdaLogLevel', ['DEBUG', 'INFO', 'WARN', 'ERROR'], 'INFO'),
    logRetentionDays: c.oneOf<number>(raw, 'logRetentionDays', RETENTION_DAYS, 30),
    schedules: list(c, raw, 'schedules').map((s, i) => parseSchedule(c, s, `schedules[${i}]`, scheduleNames)),
    triggers: list(c, raw, 'triggers').map((t, i) => parseTrigger(c, t, `triggers[${i}]`, triggerNames)),
  };
}

export interface LoadConfigOptions {
  /** An explicit path (from `-c webrun:config=<path>` or `--config`), resolved against `cwd`: it must exist. */
  readonly path?: string;
  /** Where the default `webrun.config.json` is looked for; a missing default file means all defaults. */
  readonly defaultDir?: string;
  readonly cwd?: string;
}

/** Reads and validates the config file. Throws ConfigFileError naming the file and the field. */
export function loadConfig(options: LoadConfigOptions = {}): WebrunConfig {
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.path !== undefined && options.path !== '';
  const file = explicit ? path.resolve(cwd, options.path as string) : path.resolve(options.defaultDir ?? cwd, DEFAULT_CONFIG_FILE);
  const source = explicit ? (options.path as string) : DEFAULT_CONFIG_FILE;
  if (!existsSync(file)) {
    if (explicit) throw new ConfigFileError(source, '', `file not found (${file})`);
    return parseConfig({}, source, path.dirname(file));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigFileError(source, '', `is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, source, path.dirname(file));
}
