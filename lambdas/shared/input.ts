/**
 * Validation of the execution input. Runs in the start Lambda before any session exists (and at synth for
 * scheduled inputs), so bad input fails fast with `Webrun.InvalidInput` naming the field.
 */
import { LIMITS, SITE_SECRET_PREFIX } from './contract';
import { InvalidInput } from './errors';
import type { OutputType, SessionOptions, SiteCredentialRef, WorkflowInput, WorkflowTask } from './types';

const OUTPUT_TYPES: readonly OutputType[] = ['text', 'structured_json', 'structured_csv'];
const SESSION_FIELDS = ['startingPoint', 'profileId', 'avoidDomains', 'maxInputTokens', 'maxOutputTokens'] as const;
const TASK_FIELDS = ['taskDetails', 'maxDuration', 'startingPoint', 'avoidDomains', 'maxInputTokens', 'maxOutputTokens', 'outputType', 'outputSchema', 'files', 'secrets'] as const;

/** A secret's name in its ARN (which ends with a 6-character suffix that CDK and the console add). */
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:([A-Za-z0-9/_+=.@-]+)$/;
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const JSON_SCHEMA_TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? 'a string' : typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

function rejectUnknown(obj: Json, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      // A key that is empty or not a plain name ("", "a.b", "x y") is quoted, so the field is never blank or ambiguous.
      const name = /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key.slice(0, 100))}]`;
      throw new InvalidInput(name, `is not a known field (allowed: ${allowed.join(', ')})`);
    }
  }
}

function httpUrl(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidInput(field, `must be a URL string, got ${describe(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidInput(field, `is not a valid URL: ${JSON.stringify(value.slice(0, 100))}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidInput(field, `must be an http(s) URL, got ${url.protocol}`);
  return value;
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new InvalidInput(field, `must be an integer, got ${describe(value)}`);
  if (value < min || value > max) throw new InvalidInput(field, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function nonEmptyString(value: unknown, field: string, maxChars: number): string {
  if (typeof value !== 'string') throw new InvalidInput(field, `must be a string, got ${describe(value)}`);
  if (value.trim() === '') throw new InvalidInput(field, 'must not be empty');
  if (value.length > maxChars) throw new InvalidInput(field, `must be at most ${maxChars} characters, got ${value.length}`);
  return value;
}

function stringList(value: unknown, field: string, maxItems: number, check?: (item: string, itemField: string) => void): string[] {
  if (!Array.isArray(value)) throw new InvalidInput(field, `must be an array of strings, got ${describe(value)}`);
  if (value.length > maxItems) throw new InvalidInput(field, `must have at most ${maxItems} items, got ${value.length}`);
  return value.map((item, i) => {
    const itemField = `${field}[${i}]`;
    const s = nonEmptyString(item, itemField, 2_000);
    check?.(s, itemField);
    return s;
  });
}

const DOMAIN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
function domain(item: string, field: string): void {
  if (!DOMAIN.test(item)) throw new InvalidInput(field, `must be a domain name like "example.com", got ${JSON.stringify(item.slice(0, 100))}`);
}

/** A structural check that `outputSchema` is a JSON Schema object (types, properties, items, required). */
export function checkJsonSchema(schema: unknown, field: string, depth = 0): void {
  if (!isObject(schema)) throw new InvalidInput(field, `must be a JSON Schema object, got ${describe(schema)}`);
  if (depth > 20) throw new InvalidInput(field, 'is nested too deeply (more than 20 levels)');
  if ('type' in schema) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (types.length === 0 || !types.every((t) => typeof t === 'string' && JSON_SCHEMA_TYPES.has(t))) {
      throw new InvalidInput(`${field}.type`, `must be one of ${[...JSON_SCHEMA_TYPES].join(', ')} (or an array of them)`);
    }
  }
  if ('properties' in schema) {
    if (!isObject(schema.properties)) throw new InvalidInput(`${field}.properties`, 'must be an object of schemas');
    for (const [key, sub] of Object.entries(schema.properties)) checkJsonSchema(sub, `${field}.properties.${key}`, depth + 1);
  }
  if ('items' in schema && !(typeof schema.items === 'boolean')) checkJsonSchema(schema.items, `${field}.items`, depth + 1);
  if ('required' in schema && !(Array.isArray(schema.required) && schema.required.every((r) => typeof r === 'string'))) {
    throw new InvalidInput(`${field}.required`, 'must be an array of property names');
  }
  if ('enum' in schema && !Array.isArray(schema.enum)) throw new InvalidInput(`${field}.enum`, 'must be an array');
}

function validateSession(value: unknown): SessionOptions {
  if (value === undefined) return {};
  if (!isObject(value)) throw new InvalidInput('session', `must be an object, got ${describe(value)}`);
  rejectUnknown(value, SESSION_FIELDS, 'session');
  const session: SessionOptions = {};
  if (value.startingPoint !== undefined) session.startingPoint = httpUrl(value.startingPoint, 'session.startingPoint');
  if (value.profileId !== undefined) session.profileId = nonEmptyString(value.profileId, 'session.profileId', 200);
  if (value.avoidDomains !== undefined) session.avoidDomains = stringList(value.avoidDomains, 'session.avoidDomains', LIMITS.maxAvoidDomains, domain);
  if (value.maxInputTokens !== undefined) session.maxInputTokens = integer(value.maxInputTokens, 'session.maxInputTokens', 1, LIMITS.maxTokens);
  if (value.maxOutputTokens !== undefined) session.maxOutputTokens = integer(value.maxOutputTokens, 'session.maxOutputTokens', 1, LIMITS.maxTokens);
  return session;
}

function validateTask(value: unknown, i: number): WorkflowTask {
  const path = `tasks[${i}]`;
  if (!isObject(value)) throw new InvalidInput(path, `must be an object with taskDetails, got ${describe(value)}`);
  rejectUnknown(value, TASK_FIELDS, path);
  const task: WorkflowTask = {
    taskDetails: nonEmptyString(value.taskDetails, `${path}.taskDetails`, LIMITS.maxTaskDetailsChars),
    maxDuration: value.maxDuration === undefined ? LIMITS.maxDurationMs : integer(value.maxDuration, `${path}.maxDuration`, LIMITS.minDurationMs, LIMITS.maxDurationMs),
  };
  if (value.startingPoint !== undefined) task.startingPoint = httpUrl(value.startingPoint, `${path}.startingPoint`);
  if (value.avoidDomains !== undefined) task.avoidDomains = stringList(value.avoidDomains, `${path}.avoidDomains`, LIMITS.maxAvoidDomains, domain);
  if (value.maxInputTokens !== undefined) task.maxInputTokens = integer(value.maxInputTokens, `${path}.maxInputTokens`, 1, LIMITS.maxTokens);
  if (value.maxOutputTokens !== undefined) task.maxOutputTokens = integer(value.maxOutputTokens, `${path}.maxOutputTokens`, 1, LIMITS.maxTokens);
  if (value.outputType !== undefined) {
    if (typeof value.outputType !== 'string' || !OUTPUT_TYPES.includes(value.outputType as OutputType)) {
      throw new InvalidInput(`${path}.outputType`, `must be one of ${OUTPUT_TYPES.join(', ')}, got ${JSON.stringify(value.outputType)}`);
    }
    task.outputType = value.outputType as OutputType;
  }
  if (value.outputSchema !== undefined) {
    if (task.outputType === undefined || task.outputType === 'text') {
      throw new InvalidInput(`${path}.outputSchema`, 'needs outputType "structured_json" or "structured_csv"');
    }
    checkJsonSchema(value.outputSchema, `${path}.outputSchema`);
    task.outputSchema = value.outputSchema as Json;
  }
  if (value.files !== undefined) task.files = stringList(value.files, `${path}.files`, LIMITS.maxFiles);
  if (value.secrets !== undefined) task.secrets = siteCredentialRefs(value.secrets, `${path}.secrets`);
  return task;
}

/** The name of the secret a reference (name or ARN) points at. */
export function siteSecretName(reference: string): string {
  return SECRET_ARN.exec(reference)?.[1] ?? reference;
}

function siteCredentialRefs(value: unknown, field: string): SiteCredentialRef[] {
  if (!Array.isArray(value)) throw new InvalidInput(field, `must be an array of { "match", "secret" }, got ${describe(value)}`);
  if (value.length === 0 || value.length > LIMITS.maxSiteCredentials) throw new InvalidInput(field, `must hold 1 to ${LIMITS.maxSiteCredentials} entries, got ${value.length}`);
  return value.map((item, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(item)) throw new InvalidInput(at, `must be an object { "match", "secret" }, got ${describe(item)}`);
    if ('fields' in item) {
      // Never echo the values: they are someone's password.
      throw new InvalidInput(`${at}.fields`, `inline credentials are refused: execution input is kept in the execution history. Put them in a Secrets Manager secret named "${SITE_SECRET_PREFIX}..." and name it with "secret"`);
    }
    rejectUnknown(item, ['match', 'secret'], at);
    const match = nonEmptyString(item.match, `${at}.match`, 500);
    const secret = nonEmptyString(item.secret, `${at}.secret`, 2_048);
    const name = siteSecretName(secret);
    // A malformed ARN keeps its colons in the "name" and fails here too.
    if (!SECRET_NAME.test(name)) {
      throw new InvalidInput(`${at}.secret`, 'must be a Secrets Manager secret name or ARN');
    }
    if (!name.startsWith(SITE_SECRET_PREFIX)) {
      throw new InvalidInput(`${at}.secret`, `must name a secret whose name starts with "${SITE_SECRET_PREFIX}" (the workflow may read only those), got ${JSON.stringify(name)}`);
    }
    return { match, secret };
  });
}

/** Validates an execution input and applies defaults. Throws `InvalidInput` naming the first bad field. */
export function validateWorkflowInput(input: unknown): WorkflowInput {
  if (!isObject(input)) throw new InvalidInput('input', `must be a JSON object with "session" and "tasks", got ${describe(input)}`);
  rejectUnknown(input, ['session', 'tasks'], '');
  const bytes = Buffer.byteLength(JSON.stringify(input), 'utf8');
  if (bytes > LIMITS.maxInputBytes) throw new InvalidInput('input', `is ${bytes} bytes; at most ${LIMITS.maxInputBytes} are accepted`);
  const session = validateSession(input.session);
  if (!Array.isArray(input.tasks)) throw new InvalidInput('tasks', `must be an array of tasks, got ${input.tasks === undefined ? 'nothing' : describe(input.tasks)}`);
  if (input.tasks.length === 0) throw new InvalidInput('tasks', 'must contain at least one task');
  if (input.tasks.length > LIMITS.maxTasks) throw new InvalidInput('tasks', `must contain at most ${LIMITS.maxTasks} tasks, got ${input.tasks.length}`);
  return { session, tasks: input.tasks.map(validateTask) };
}
