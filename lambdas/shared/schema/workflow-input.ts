/**
 * The execution input, declared once. From this schema come the TypeScript types (`WorkflowInput`, ...), the
 * validator the start Lambda, the local runner, the CLI and the config file use (`validateWorkflowInput` in
 * ../input.ts) and schema/workflow-input.schema.json (`npm run schema`), which editors use through `$schema`.
 *
 * To add a task option: add it to `TaskSchema` below (with its limits and description), add a test, run
 * `npm run schema`. Its type, its place in the allowed-field list, its JSON Schema and its message follow.
 */
import * as v from 'valibot';
import { LIMITS, SITE_SECRET_PREFIX } from '../contract';
import { fillInput, NOT_A_VAR_NAME, RESERVED_VAR_NAME, RESERVED_VAR_NAMES, VAR_NAME, type Vars } from '../vars';
import {
  anObject,
  custom,
  declaredField,
  describe,
  fields,
  httpUrl,
  integer,
  isPlainObject,
  type Issue,
  list,
  maxChars,
  oneOf,
  type PathKey,
  pathItems,
  quote,
  reportIssues,
  strict,
  textUpTo,
  tooDeep,
} from './core';

/**
 * How deep the whole input may nest objects and arrays (the input object is level 1). Checked before anything
 * else reads the input, so a hostile input (an outputSchema nested thousands deep) is refused instead of
 * exhausting a stack here or in the executor. The deepest valid shape needs 5 levels; the rest is room for
 * outputSchema (about 14 nested object schemas).
 */
export const MAX_INPUT_DEPTH = 32;

/** Without flags, so the same pattern serves in the generated JSON Schema. */
const DOMAIN = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
/** A secret's name in its ARN (which ends with a 6-character suffix that CDK and the console add). */
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:([A-Za-z0-9/_+=.@-]+)$/;
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const JSON_SCHEMA_TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

/** The name of the secret a reference (name or ARN) points at. */
export function siteSecretName(reference: string): string {
  return SECRET_ARN.exec(reference)?.[1] ?? reference;
}

/** A place inside a value: its parent's place and its key (a path built only when an issue names it). */
interface Place {
  readonly parent?: Place;
  readonly key?: PathKey;
}

function pathOf(place: Place, ...more: PathKey[]): PathKey[] {
  const path = [...more];
  for (let at: Place | undefined = place; at?.key !== undefined; at = at.parent) path.unshift(at.key);
  return path;
}

/** draft-07 keywords whose value is one schema (an object, or true or false). */
const SCHEMA_KEYWORDS = ['additionalItems', 'additionalProperties', 'contains', 'propertyNames', 'if', 'then', 'else', 'not'];
/** Keywords whose value is an object of schemas (`$defs` is draft-07's `definitions` under its later name). */
const SCHEMA_MAP_KEYWORDS = ['properties', 'patternProperties', 'definitions', '$defs', 'dependencies'];
/** Keywords whose value is a non-empty array of schemas. */
const SCHEMA_LIST_KEYWORDS = ['allOf', 'anyOf', 'oneOf'];

const isStringArray = (value: unknown): boolean => Array.isArray(value) && value.every((item) => typeof item === 'string');

/**
 * What is wrong with a JSON Schema given as `outputSchema`, structurally (types, required, enum, and every subschema
 * draft-07 has: properties, items, additionalProperties, anyOf, not, definitions, ...), with paths relative to it.
 * Below the root a schema may be true or false, as draft-07 allows. Iterative and linear, however deep the schema
 * (the input's depth is bounded before this runs, but a direct caller's is not).
 */
export function jsonSchemaIssues(schema: unknown): Issue[] {
  const issues: Issue[] = [];
  const stack: Array<{ node: unknown; place: Place }> = [{ node: schema, place: {} }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { node, place } = next;
    if (typeof node === 'boolean' && place.key !== undefined) continue;
    if (!isPlainObject(node)) {
      const what = place.key === undefined ? 'a JSON Schema object' : 'a JSON Schema (an object, or true or false)';
      issues.push({ path: pathOf(place), message: `must be ${what}, got ${describe(node)}` });
      continue;
    }
    const children: Array<{ node: unknown; place: Place }> = [];
    // In the order the keywords are written, so issues come in document order.
    for (const [keyword, value] of Object.entries(node)) {
      const at: Place = { parent: place, key: keyword };
      if (keyword === 'type') {
        const types: unknown[] = Array.isArray(value) ? value : [value];
        if (types.length === 0 || !types.every((t) => typeof t === 'string' && JSON_SCHEMA_TYPES.includes(t))) {
          issues.push({ path: pathOf(at), message: `must be one of ${JSON_SCHEMA_TYPES.join(', ')} (or an array of them)` });
        }
      } else if (keyword === 'required') {
        if (!isStringArray(value)) issues.push({ path: pathOf(at), message: 'must be an array of property names' });
      } else if (keyword === 'enum') {
        if (!Array.isArray(value)) issues.push({ path: pathOf(at), message: 'must be an array' });
      } else if (SCHEMA_KEYWORDS.includes(keyword) || (keyword === 'items' && !Array.isArray(value))) {
        children.push({ node: value, place: at });
      } else if (SCHEMA_LIST_KEYWORDS.includes(keyword) || keyword === 'items') {
        // `items` as an array is a tuple: one schema per position.
        if (!Array.isArray(value) || value.length === 0) issues.push({ path: pathOf(at), message: 'must be a non-empty array of schemas' });
        else value.forEach((sub, i) => children.push({ node: sub, place: { parent: at, key: i } }));
      } else if (SCHEMA_MAP_KEYWORDS.includes(keyword)) {
        if (!isPlainObject(value)) {
          issues.push({ path: pathOf(at), message: 'must be an object of schemas' });
          continue;
        }
        for (const [key, sub] of Object.entries(value)) {
          // A dependency is a schema, or the properties that the property needs.
          if (keyword === 'dependencies' && Array.isArray(sub)) {
            if (!isStringArray(sub)) issues.push({ path: pathOf(at, key), message: 'must be a schema or an array of property names' });
          } else children.push({ node: sub, place: { parent: at, key } });
        }
      }
    }
    // Depth first, in document order.
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return issues;
}

const domains = list(
  v.pipe(textUpTo(2_000), v.regex(DOMAIN, (issue) => `must be a domain name like "example.com", got ${quote(issue.input)}`)),
  LIMITS.maxAvoidDomains,
);
const avoidDomains = v.pipe(domains, v.description('Domains the agent must not visit, like "x.com" or "*.ads.example.com".'));
const tokens = v.pipe(integer(1, LIMITS.maxTokens), v.description('A cap on the tokens the agent may use.'));

/** The flags a `/regex/flags` may carry (those JavaScript knows; case-sensitive). */
const REGEX_FLAGS = 'dgimsuvy';

/**
 * A guardrail rule's `when`: text found in the question (case-insensitive), or `/regex/flags`. Returns a problem,
 * or undefined when it can be used. Anything shaped `/.../letters` is a regex (lambdas/shared/guardrails.ts reads
 * it so), so a flag JavaScript does not know (`/code/I`) is refused by name instead of making a text rule of it.
 */
export function whenProblem(when: string): string | undefined {
  const m = /^\/(.*)\/([A-Za-z]*)$/s.exec(when);
  if (!m) return undefined;
  const [, pattern, flags] = m;
  // An empty pattern matches every question: with answerFromSecret it would send the secret to any of them.
  if (pattern === '') return 'is an empty /regex/, which matches every question: write a pattern between the slashes';
  const unknown = [...flags].find((f) => !REGEX_FLAGS.includes(f));
  if (unknown !== undefined) return `has the flag "${unknown}", which is not a regex flag (flags are ${[...REGEX_FLAGS].join(', ')}, in lower case; a text shaped /.../letters is read as a regex)`;
  const repeated = [...flags].find((f, i) => flags.indexOf(f) !== i);
  if (repeated !== undefined) return `has the flag "${repeated}" twice`;
  try {
    new RegExp(pattern, flags);
    return undefined;
  } catch (err) {
    return `is not a valid /regex/flags: ${(err as Error).message}`;
  }
}

const secretName = v.pipe(
  textUpTo(2_048),
  // A malformed ARN keeps its colons in the "name" and fails here too.
  v.check((s) => SECRET_NAME.test(siteSecretName(s)), 'must be a Secrets Manager secret name or ARN'),
  v.check(
    (s) => siteSecretName(s).startsWith(SITE_SECRET_PREFIX),
    (issue) => `must name a secret whose name starts with "${SITE_SECRET_PREFIX}" (the workflow may read only those), got ${JSON.stringify(siteSecretName(issue.input))}`,
  ),
);

const ANSWERS = ['answer', 'answerFromSecret', 'action'] as const;

/** A guardrail rule: when a question matches, answer it (text, or a field of a secret) or fail the run. */
export const GuardrailRuleSchema = v.pipe(
  strict({
    when: v.pipe(
      textUpTo(500),
      v.check((w) => whenProblem(w) === undefined, (issue) => whenProblem(issue.input) ?? 'is not valid'),
      v.description('Text to find in the question (case-insensitive), or /regex/flags.'),
    ),
    answer: v.optional(v.pipe(textUpTo(2_000), v.description('The answer to send.'))),
    answerFromSecret: v.optional(
      v.pipe(
        strict({
          secret: v.pipe(secretName, v.description(`A Secrets Manager secret name or ARN; the name must start with "${SITE_SECRET_PREFIX}".`)),
          field: v.pipe(textUpTo(200), v.description('The field of the secret (a JSON object of strings) that holds the answer.')),
          totp: v.optional(v.pipe(v.boolean((issue) => `must be true or false, got ${describe(issue.input)}`), v.description('The field is a base32 TOTP seed: answer with its current RFC 6238 code.'))),
        }),
        v.description('Answer with a field of a Secrets Manager secret, read when the question comes; never recorded.'),
      ),
    ),
    action: v.optional(v.pipe(oneOf(['fail'] as const), v.description('"fail": end the run with Webrun.GuardrailTriggered.'))),
  }, 'an object { "when", and one of "answer", "answerFromSecret", "action" }'),
  v.check(
    (rule) => ANSWERS.filter((k) => rule[k] !== undefined).length === 1,
    'needs exactly one of "answer", "answerFromSecret" and "action"',
  ),
);

/** What to do when the agent stops at a guardrail and asks a question. */
export const GuardrailsSchema = v.pipe(
  strict({
    rules: v.optional(v.pipe(list(GuardrailRuleSchema, 20, 'rules'), v.description('Rules tried in order; task rules before session rules.'))),
    ask: v.optional(
      v.pipe(
        strict({
          timeoutSeconds: v.optional(
            v.pipe(integer(10, 280), v.description('How long to wait for a person (at most 280: an idle session ends after 5 minutes). Default: 240.')),
            240,
          ),
        }),
        v.description('When no rule matches, ask a person and wait for the answer.'),
      ),
    ),
    // No schema default: a task's guardrails without maxAnswers take the session's, then 5 (lambdas/shared/guardrails.ts).
    maxAnswers: v.optional(v.pipe(integer(1, 20), v.description('Answers one task may get before the run gives up on it; a task without it takes the session\'s. Default: 5.'))),
  }),
  v.description('Guardrail questions answered by rules or a person, instead of ending the run.'),
);

const usd = (what: string) =>
  v.pipe(
    v.number((issue) => `must be a number of US dollars, got ${describe(issue.input)}`),
    v.minValue(0, (issue) => `must not be negative, got ${String(issue.input)}`),
    v.maxValue(100_000, (issue) => `must be at most 100000, got ${String(issue.input)}`),
    v.description(what),
  );

/** Session options accepted in the execution input (`session`). */
export const SessionSchema = v.pipe(
  strict({
    startingPoint: v.optional(v.pipe(httpUrl(), v.description('The page the browser opens first (http or https).'))),
    profileId: v.optional(v.pipe(textUpTo(200), v.description('A saved browser profile (cookies, logins) to start from.'))),
    avoidDomains: v.optional(avoidDomains),
    maxInputTokens: v.optional(tokens),
    maxOutputTokens: v.optional(tokens),
    guardrails: v.optional(GuardrailsSchema),
    maxCostUsd: v.optional(usd('The most the run may cost (the sum of its tasks\' usage.cost, the running one included): crossing it stops the task and ends the run with Webrun.BudgetExceeded.')),
    minBalanceUsd: v.optional(usd('The least balance the account must have after start-session, else Webrun.InsufficientBalance before any task.')),
  }),
  v.description('Options of the one browser session all tasks run in.'),
);

const INLINE_CREDENTIALS =
  `inline credentials are refused: execution input is kept in the execution history. Put them in a Secrets Manager secret named "${SITE_SECRET_PREFIX}..." and name it with "secret"`;

/**
 * Site credentials by reference: the agent may type the login fields held by this Secrets Manager secret (a name
 * or ARN under the `webrun-sfn/` prefix) on pages matching `match`. The send step reads the secret, so its
 * values never enter execution input, state or history.
 */
export const SiteCredentialRefSchema = v.pipe(
  anObject('an object { "match", "secret" }'),
  // Before the fields, and instead of "not a known field": never echo the values, they are someone's password.
  v.forward(v.check((item: Record<string, unknown>) => !('fields' in item), INLINE_CREDENTIALS), ['fields']),
  fields({
    match: v.pipe(textUpTo(500), v.description('The pages the credentials are for, like "*.shop.example.com".')),
    secret: v.pipe(
      secretName,
      v.description(`A Secrets Manager secret name or ARN; the name must start with "${SITE_SECRET_PREFIX}".`),
    ),
  }),
);

const secretsCount = (issue: v.BaseIssue<unknown>) => `must hold 1 to ${LIMITS.maxSiteCredentials} entries, got ${issue.received}`;

export const OUTPUT_TYPES = ['text', 'structured_json', 'structured_csv'] as const;

const outputSchema = v.pipe(
  custom<Record<string, unknown>>(isPlainObject, (value) => `must be a JSON Schema object, got ${describe(value)}`, { $ref: 'http://json-schema.org/draft-07/schema#' }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    for (const issue of jsonSchemaIssues(dataset.value)) addIssue({ message: issue.message, path: pathItems(dataset.value, issue.path) });
  }),
  v.description('The JSON Schema the result must follow (needs outputType "structured_json" or "structured_csv").'),
);

/** One task of the execution input. */
export const TaskSchema = v.pipe(
  strict({
    taskDetails: v.pipe(textUpTo(LIMITS.maxTaskDetailsChars), v.description('What the agent should do, in plain words.')),
    maxDuration: v.optional(
      v.pipe(integer(LIMITS.minDurationMs, LIMITS.maxDurationMs), v.description('Milliseconds the agent may spend on the task (the API\'s default and maximum is 300000).')),
      LIMITS.maxDurationMs,
    ),
    startingPoint: v.optional(v.pipe(httpUrl(), v.description('A page to open before the task (http or https).'))),
    avoidDomains: v.optional(avoidDomains),
    maxInputTokens: v.optional(tokens),
    maxOutputTokens: v.optional(tokens),
    outputType: v.optional(v.pipe(oneOf(OUTPUT_TYPES), v.description('The form of the result: text (the default), structured_json or structured_csv (with outputSchema).'))),
    outputSchema: v.optional(outputSchema),
    files: v.optional(v.pipe(list(textUpTo(2_000), LIMITS.maxFiles), v.description('Ids of files uploaded to the API beforehand.'))),
    guardrails: v.optional(GuardrailsSchema),
    secrets: v.optional(
      v.pipe(
        v.array(SiteCredentialRefSchema, (issue) => `must be an array of { "match", "secret" }, got ${describe(issue.input)}`),
        v.minLength(1, secretsCount),
        v.maxLength(LIMITS.maxSiteCredentials, secretsCount),
        v.description('Site credentials by reference: Secrets Manager secrets whose login fields the agent may type.'),
      ),
    ),
  }, 'an object with taskDetails'),
  v.forward(
    v.partialCheck(
      [['outputType'], ['outputSchema']],
      (task) => task.outputSchema === undefined || (task.outputType !== undefined && task.outputType !== 'text'),
      'needs outputType "structured_json" or "structured_csv"',
    ),
    ['outputSchema'],
  ),
);

/** The most variables one input may carry. */
export const MAX_VARS = 100;
/** The longest value a variable may hold, in characters (the fields it fills keep their own limits). */
export const MAX_VAR_CHARS = 20_000;

/**
 * Whether a variable's number is filled in as the JSON text it was written with (`String(n)`): an integer up to
 * 2^53 - 1 is, but past it the digits change (1234567890123456789 becomes 1234567890123456800), and String writes
 * an exponent from 1e21 and below 0.000001 (1e+21, 1e-7). Other decimals keep their digits (0.1, 24.90 as 24.9).
 */
function isFillableNumber(n: number): boolean {
  return Number.isSafeInteger(n) || (!Number.isInteger(n) && Math.abs(n) >= 1e-6);
}

const fillableNumber = v.pipe(
  // The same rule for editors: the JSON Schema that stands for this number (see `custom` in ./core.ts).
  Object.assign(v.number(), {
    jsonSchema: {
      anyOf: [
        { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
        { type: 'number', not: { type: 'integer' }, anyOf: [{ minimum: 1e-6 }, { maximum: -1e-6 }] },
      ],
    },
  }),
  // JSON has no Infinity: 1e400 parses as one here, and reaches Step Functions as null.
  v.finite((issue) => `must be a finite number, got ${String(issue.input)}`),
  v.check(
    isFillableNumber,
    (issue) => `must be in quotes: as a number it would be filled in as ${String(issue.input)} (only whole numbers within ±${Number.MAX_SAFE_INTEGER} and decimals of at least 0.000001 keep their digits); write it as a string`,
  ),
);

const varValue = v.union(
  [
    v.pipe(
      v.string(),
      maxChars(MAX_VAR_CHARS),
      // Filled in once: a value that held a placeholder would make the filled input read as a template again.
      v.check((s) => !s.includes('{{'), 'must not contain "{{" (values are filled in as they are, never as templates)'),
    ),
    fillableNumber,
    v.boolean(),
  ],
  (issue) => `must be a string, number or boolean, got ${describe(issue.input)}`,
);

/**
 * `vars`: values for the `{{name}}` placeholders of `taskDetails`, `startingPoint` and `session.startingPoint`
 * (lambdas/shared/vars.ts). Numbers and booleans are written as their JSON text.
 */
export const VarsSchema = v.pipe(
  anObject('an object of variables by name'),
  // valibot's record skips these keys (values and all), so they are refused here, by name; VAR_NAME refuses them
  // in the JSON Schema.
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    for (const name of RESERVED_VAR_NAMES) if (Object.hasOwn(dataset.value, name)) addIssue({ message: RESERVED_VAR_NAME, path: pathItems(dataset.value, [name]) });
  }),
  v.record(
    v.pipe(
      v.string(),
      v.regex(VAR_NAME, (issue) => `${NOT_A_VAR_NAME}: ${quote(issue.input)}`),
    ),
    varValue,
  ),
  v.maxEntries(MAX_VARS, (issue) => `must hold at most ${MAX_VARS} variables, got ${issue.received}`),
  v.description('Values for the {{name}} placeholders in taskDetails, startingPoint and session.startingPoint, filled in before any session exists. Strings; numbers and booleans are written as their JSON text.'),
);

const ROOT_ENTRIES = {
  $schema: v.optional(v.pipe(v.string((issue) => `must be a string, got ${describe(issue.input)}`), v.description('The JSON Schema of this file, for editors; ignored.'))),
  vars: v.optional(VarsSchema),
  session: v.optional(SessionSchema, {}),
  tasks: v.pipe(
    v.array(TaskSchema, (issue) => `must be an array of tasks, got ${describe(issue.input)}`),
    v.minLength(1, 'must contain at least one task'),
    v.maxLength(LIMITS.maxTasks, (issue) => `must contain at most ${LIMITS.maxTasks} tasks, got ${issue.received}`),
    v.description(`The tasks, run in order in the one session (1 to ${LIMITS.maxTasks}).`),
  ),
};
const rootFields = fields(ROOT_ENTRIES);

/** The input's vars, when they are valid (undefined for none); their own issues are reported by `rootFields`. */
function validVars(input: Record<string, unknown>): Vars | undefined {
  if (input.vars === undefined) return {};
  const result = v.safeParse(VarsSchema, input.vars);
  return result.success ? result.output : undefined;
}

/**
 * The execution input: `{ "session"?, "tasks" }` (and an ignored `$schema`). Its output has every default applied
 * (`session: {}`, each task's `maxDuration: 300000`) and no `$schema`.
 */
export const WorkflowInputSchema = v.pipe(
  anObject('a workflow input object with "tasks"'),
  // The whole input's depth first, without recursion: nothing after this may meet a hostile nesting.
  v.rawCheck(({ dataset, addIssue }) => {
    const at = tooDeep(dataset.value, MAX_INPUT_DEPTH);
    if (at === undefined) return;
    addIssue({ message: `is nested too deeply (more than ${MAX_INPUT_DEPTH} levels)`, path: pathItems(dataset.value, declaredField(rootFields, at)) });
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (dataset.issues) return;
    const bytes = Buffer.byteLength(JSON.stringify(dataset.value), 'utf8');
    if (bytes > LIMITS.maxInputBytes) addIssue({ message: `is ${bytes} bytes; at most ${LIMITS.maxInputBytes} are accepted` });
  }),
  // Placeholders are filled before the fields are checked, so a filled startingPoint must still be a URL and a
  // filled taskDetails keep its limit. A placeholder that is malformed or that no variable fills is refused here.
  // The size limit holds for the filled input too: that is what every state carries, and a short variable used in
  // every task would otherwise bring a run past the 256 KiB state quota after its session was opened.
  v.rawCheck(({ dataset, addIssue }) => {
    if (dataset.issues || !isPlainObject(dataset.value)) return;
    const vars = validVars(dataset.value);
    if (!vars) return;
    const filled = fillInput(dataset.value, vars);
    reportIssues(addIssue, dataset.value, filled.issues);
    if (filled.issues.length > 0 || filled.value === dataset.value) return;
    const bytes = Buffer.byteLength(JSON.stringify({ ...filled.value, vars: undefined }), 'utf8');
    if (bytes > LIMITS.maxInputBytes) addIssue({ message: `is ${bytes} bytes once its vars are filled in; at most ${LIMITS.maxInputBytes} are accepted` });
  }),
  v.transform((input) => {
    const vars = validVars(input);
    return vars ? fillInput(input, vars).value : input;
  }),
  rootFields,
  // `vars` are spent: the validated input carries the filled-in fields, not the variables.
  v.transform(({ $schema: _ignored, vars: _filled, ...input }) => input),
  v.title('webrun-sfn workflow input'),
  v.description('The execution input of a webrun-sfn workflow: one browser session and the tasks sent to it in order; `vars` fill {{name}} placeholders.'),
);

export type OutputType = (typeof OUTPUT_TYPES)[number];
/** Session options accepted in the execution input (`session`). */
export type SessionOptions = v.InferOutput<typeof SessionSchema>;
/** Site credentials by reference (a task's `secrets`). */
export type SiteCredentialRef = v.InferOutput<typeof SiteCredentialRefSchema>;
/** One task of the execution input, after validation and defaults. */
export type WorkflowTask = v.InferOutput<typeof TaskSchema>;
/** The execution input, validated (`validateWorkflowInput`). */
export type WorkflowInput = v.InferOutput<typeof WorkflowInputSchema>;
/**
 * The execution input as a caller writes it (only `tasks[].taskDetails` is required; defaults are filled in when it
 * is validated): what the package exports as `WorkflowInput`, the type of what StartExecution is given.
 */
export type WorkflowInputDocument = Omit<WorkflowInput, 'session' | 'tasks'> & {
  $schema?: string;
  vars?: v.InferOutput<typeof VarsSchema>;
  session?: Omit<WorkflowInput['session'], 'guardrails'> & { guardrails?: GuardrailsDocument };
  tasks: Array<Omit<WorkflowTask, 'maxDuration' | 'guardrails'> & { maxDuration?: number; guardrails?: GuardrailsDocument }>;
};
/** Guardrails as written: the schema's defaults (every one listed in schema/workflow-input.schema.json) left out. */
type GuardrailsDocument = Omit<NonNullable<WorkflowTask['guardrails']>, 'ask'> & { ask?: { timeoutSeconds?: number } };
