import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInput } from '../../../lambdas/shared/errors';
import { LIMITS } from '../../../lambdas/shared/contract';
import { checkJsonSchema, validateWorkflowInput, workflowInputIssues } from '../../../lambdas/shared/input';
import { formatPath } from '../../../lambdas/shared/schema/core';
import { MAX_INPUT_DEPTH } from '../../../lambdas/shared/schema/workflow-input';

/** The sample execution input of DESIGN.md. */
const SAMPLE = {
  session: { startingPoint: 'https://example.com', profileId: 'optional', avoidDomains: ['x.com'], maxInputTokens: 100000, maxOutputTokens: 100000 },
  tasks: [
    { taskDetails: "Search for 'wireless keyboard'", maxDuration: 180000, outputType: 'structured_json', outputSchema: { type: 'object' } },
    { taskDetails: 'Add the first result to cart' },
  ],
};

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function refusal(input: unknown): InvalidInput {
  try {
    validateWorkflowInput(input);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).name).toBe('Webrun.InvalidInput');
    return err as InvalidInput;
  }
  throw new Error(`expected ${JSON.stringify(input).slice(0, 200)} to be refused`);
}

/** A valid one-task input with `patch` applied to the task (a key set to undefined is deleted). */
function withTask(patch: Record<string, unknown>) {
  const input = clone(SAMPLE) as { session: Record<string, unknown>; tasks: Array<Record<string, unknown>> };
  Object.assign(input.tasks[0], patch);
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete input.tasks[0][k];
  return input;
}
function withSession(patch: Record<string, unknown>) {
  const input = clone(SAMPLE) as { session: Record<string, unknown>; tasks: unknown[] };
  Object.assign(input.session, patch);
  return input;
}

describe('validateWorkflowInput accepts', () => {
  it('the DESIGN.md sample, applying the maxDuration default of 300000 to the second task', () => {
    const result = validateWorkflowInput(clone(SAMPLE));
    expect(result).toStrictEqual({
      session: { startingPoint: 'https://example.com', profileId: 'optional', avoidDomains: ['x.com'], maxInputTokens: 100000, maxOutputTokens: 100000 },
      tasks: [
        { taskDetails: "Search for 'wireless keyboard'", maxDuration: 180000, outputType: 'structured_json', outputSchema: { type: 'object' } },
        { taskDetails: 'Add the first result to cart', maxDuration: 300000 },
      ],
    });
  });

  it('an input with no session (session defaults to {})', () => {
    expect(validateWorkflowInput({ tasks: [{ taskDetails: 'x' }] })).toStrictEqual({ session: {}, tasks: [{ taskDetails: 'x', maxDuration: LIMITS.maxDurationMs }] });
  });

  it('every task field at its limits, wildcard avoidDomains, csv output, files', () => {
    const task = {
      taskDetails: 'd'.repeat(LIMITS.maxTaskDetailsChars),
      maxDuration: LIMITS.minDurationMs,
      startingPoint: 'http://localhost:8080/path?q=1',
      avoidDomains: ['*.ads.example.co.uk'],
      maxInputTokens: LIMITS.maxTokens,
      maxOutputTokens: 1,
      outputType: 'structured_csv',
      outputSchema: { type: ['object', 'null'], properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'integer' } } }, required: ['a'], enum: [1] },
      files: ['file-1'],
    };
    expect(validateWorkflowInput({ tasks: [task] }).tasks[0]).toStrictEqual(task);
  });

  it(`exactly ${LIMITS.maxTasks} tasks`, () => {
    expect(validateWorkflowInput({ tasks: Array.from({ length: LIMITS.maxTasks }, (_, i) => ({ taskDetails: `t${i}` })) }).tasks).toHaveLength(LIMITS.maxTasks);
  });
});

describe('validateWorkflowInput refuses, naming the field', () => {
  const cases: Array<[string, unknown, string]> = [
    // the input itself
    ['null input', null, 'input'],
    ['an array input', [SAMPLE], 'input'],
    ['a string input', JSON.stringify(SAMPLE), 'input'],
    ['an unknown top-level field', { ...clone(SAMPLE), task: [] }, 'task'],
    ['an unknown top-level field named ""', { ...clone(SAMPLE), '': 1 }, '[""]'],
    ['an unknown task field with a dot in its name', withTask({ 'output.type': 'text' }), 'tasks[0]["output.type"]'],
    ['an unknown session field named " "', withSession({ ' ': 1 }), 'session[" "]'],
    ['an oversized input', { tasks: Array.from({ length: 4 }, () => ({ taskDetails: 'x'.repeat(LIMITS.maxTaskDetailsChars) })) }, 'input'],
    // tasks
    ['missing tasks', { session: {} }, 'tasks'],
    ['tasks not an array', { tasks: { taskDetails: 'x' } }, 'tasks'],
    ['empty tasks', { tasks: [] }, 'tasks'],
    ['too many tasks', { tasks: Array.from({ length: LIMITS.maxTasks + 1 }, () => ({ taskDetails: 'x' })) }, 'tasks'],
    ['a task that is a string', { tasks: [{ taskDetails: 'ok' }, 'click it'] }, 'tasks[1]'],
    ['a task that is null', { tasks: [null] }, 'tasks[0]'],
    ['missing taskDetails', withTask({ taskDetails: undefined }), 'tasks[0].taskDetails'],
    ['empty taskDetails', withTask({ taskDetails: '' }), 'tasks[0].taskDetails'],
    ['whitespace taskDetails', withTask({ taskDetails: ' \n\t ' }), 'tasks[0].taskDetails'],
    ['numeric taskDetails', withTask({ taskDetails: 42 }), 'tasks[0].taskDetails'],
    ['too long taskDetails', { tasks: [{ taskDetails: 'x'.repeat(LIMITS.maxTaskDetailsChars + 1) }] }, 'tasks[0].taskDetails'],
    ['an unknown task field', withTask({ timeout: 5 }), 'tasks[0].timeout'],
    ['an unknown field on the second task', { tasks: [{ taskDetails: 'a' }, { taskDetails: 'b', newState: 'start' }] }, 'tasks[1].newState'],
    // maxDuration
    ['maxDuration above 300000', withTask({ maxDuration: 300001 }), 'tasks[0].maxDuration'],
    ['maxDuration below 1000', withTask({ maxDuration: 999 }), 'tasks[0].maxDuration'],
    ['maxDuration 0', withTask({ maxDuration: 0 }), 'tasks[0].maxDuration'],
    ['negative maxDuration', withTask({ maxDuration: -1000 }), 'tasks[0].maxDuration'],
    ['non-integer maxDuration', withTask({ maxDuration: 1500.5 }), 'tasks[0].maxDuration'],
    ['string maxDuration', withTask({ maxDuration: '180000' }), 'tasks[0].maxDuration'],
    ['null maxDuration', withTask({ maxDuration: null }), 'tasks[0].maxDuration'],
    // tokens
    ['task maxInputTokens 0', withTask({ maxInputTokens: 0 }), 'tasks[0].maxInputTokens'],
    ['task maxOutputTokens too big', withTask({ maxOutputTokens: LIMITS.maxTokens + 1 }), 'tasks[0].maxOutputTokens'],
    ['session maxInputTokens as string', withSession({ maxInputTokens: '100' }), 'session.maxInputTokens'],
    ['session maxOutputTokens fractional', withSession({ maxOutputTokens: 10.5 }), 'session.maxOutputTokens'],
    // session
    ['session not an object', { ...clone(SAMPLE), session: 'https://example.com' }, 'session'],
    ['session an array', { ...clone(SAMPLE), session: [] }, 'session'],
    ['session null', { ...clone(SAMPLE), session: null }, 'session'],
    ['an unknown session field', withSession({ apiKey: 'sk-1' }), 'session.apiKey'],
    ['empty profileId', withSession({ profileId: '' }), 'session.profileId'],
    // URLs
    ['a startingPoint that is not a URL', withSession({ startingPoint: 'example.com' }), 'session.startingPoint'],
    ['a javascript: startingPoint', withSession({ startingPoint: 'javascript:alert(1)' }), 'session.startingPoint'],
    ['a file: startingPoint', withSession({ startingPoint: 'file:///etc/passwd' }), 'session.startingPoint'],
    ['a numeric startingPoint', withSession({ startingPoint: 8080 }), 'session.startingPoint'],
    ['an ftp task startingPoint', withTask({ startingPoint: 'ftp://example.com/' }), 'tasks[0].startingPoint'],
    ['a garbage task startingPoint', withTask({ startingPoint: 'http://' }), 'tasks[0].startingPoint'],
    // avoidDomains
    ['avoidDomains a string', withSession({ avoidDomains: 'x.com' }), 'session.avoidDomains'],
    ['avoidDomains with a URL', withSession({ avoidDomains: ['x.com', 'https://y.com'] }), 'session.avoidDomains[1]'],
    ['avoidDomains with an empty item', withSession({ avoidDomains: [''] }), 'session.avoidDomains[0]'],
    ['avoidDomains with a number', withSession({ avoidDomains: [1] }), 'session.avoidDomains[0]'],
    ['avoidDomains without a TLD', withTask({ avoidDomains: ['localhost'] }), 'tasks[0].avoidDomains[0]'],
    ['too many avoidDomains', withTask({ avoidDomains: Array.from({ length: LIMITS.maxAvoidDomains + 1 }, (_, i) => `d${i}.com`) }), 'tasks[0].avoidDomains'],
    // outputType / outputSchema
    ['an unknown outputType', withTask({ outputType: 'json' }), 'tasks[0].outputType'],
    ['outputSchema without outputType', withTask({ outputType: undefined }), 'tasks[0].outputSchema'],
    ['outputSchema with outputType text', withTask({ outputType: 'text' }), 'tasks[0].outputSchema'],
    ['outputSchema not an object', withTask({ outputSchema: 'object' }), 'tasks[0].outputSchema'],
    ['outputSchema an array', withTask({ outputSchema: [{ type: 'object' }] }), 'tasks[0].outputSchema'],
    ['outputSchema with a bad type', withTask({ outputSchema: { type: 'dict' } }), 'tasks[0].outputSchema.type'],
    ['outputSchema with an empty type list', withTask({ outputSchema: { type: [] } }), 'tasks[0].outputSchema.type'],
    ['outputSchema with properties not an object', withTask({ outputSchema: { type: 'object', properties: ['a'] } }), 'tasks[0].outputSchema.properties'],
    ['outputSchema with a nested bad type', withTask({ outputSchema: { type: 'object', properties: { price: { type: 'float' } } } }), 'tasks[0].outputSchema.properties.price.type'],
    ['outputSchema with required not a string array', withTask({ outputSchema: { type: 'object', required: [1] } }), 'tasks[0].outputSchema.required'],
    ['outputSchema with required a string', withTask({ outputSchema: { type: 'object', required: 'a' } }), 'tasks[0].outputSchema.required'],
    ['outputSchema with bad items', withTask({ outputSchema: { type: 'array', items: 'string' } }), 'tasks[0].outputSchema.items'],
    ['outputSchema with enum not an array', withTask({ outputSchema: { enum: 'a' } }), 'tasks[0].outputSchema.enum'],
    // files
    ['files not an array', withTask({ files: 'f1' }), 'tasks[0].files'],
    ['too many files', withTask({ files: Array.from({ length: LIMITS.maxFiles + 1 }, (_, i) => `f${i}`) }), 'tasks[0].files'],
  ];

  it.each(cases.map(([name, input, field]) => ({ name, input, field })))('$name → $field', ({ input, field }) => {
    const err = refusal(input);
    expect(err.field).toBe(field);
    expect(err.message.startsWith(`${field}: `)).toBe(true);
  });

  it('an input of exactly maxInputBytes is accepted and one byte more is refused', () => {
    const base = { tasks: [{ taskDetails: '' }] as Array<{ taskDetails: string }> };
    const overhead = Buffer.byteLength(JSON.stringify(base));
    // Spread the padding over several tasks so no single taskDetails exceeds its own limit.
    const budget = LIMITS.maxInputBytes - overhead;
    const per = LIMITS.maxTaskDetailsChars;
    const make = (total: number) => {
      const tasks: Array<{ taskDetails: string }> = [];
      let left = total;
      let first = true;
      while (left > 0 || first) {
        const extra = first ? 0 : Buffer.byteLength(',{"taskDetails":""}');
        const n = Math.min(per, left - extra);
        tasks.push({ taskDetails: 'x'.repeat(Math.max(1, n)) });
        left -= Math.max(1, n) + extra;
        first = false;
      }
      return { tasks };
    };
    const exact = make(budget);
    expect(Buffer.byteLength(JSON.stringify(exact))).toBe(LIMITS.maxInputBytes);
    expect(() => validateWorkflowInput(exact)).not.toThrow();
    const over = clone(exact);
    over.tasks[0].taskDetails = over.tasks[0].taskDetails.slice(0, -1) + 'é'; // one more byte in UTF-8
    expect(Buffer.byteLength(JSON.stringify(over))).toBe(LIMITS.maxInputBytes + 1);
    expect(refusal(over).field).toBe('input');
  });

  it('a deeply nested outputSchema is refused instead of recursing without end', () => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 30; i++) schema = { type: 'object', properties: { a: schema } };
    const err = refusal(withTask({ outputSchema: schema }));
    expect(err.field.startsWith('tasks[0].outputSchema')).toBe(true);
    expect(err.message).toMatch(/nested too deeply/);
  });

  // Valid draft-07 was refused (boolean subschemas, tuple items), and anyOf, not, additionalProperties... were never
  // looked into, so `{"anyOf":[{"type":"float"}]}` passed.
  it.each([
    { type: 'object', properties: { a: true, b: false }, additionalProperties: false },
    { type: 'array', items: [{ type: 'string' }, true], additionalItems: false },
    { anyOf: [{ type: 'string' }, { type: 'null' }], not: { const: 1 } },
    { type: 'object', patternProperties: { '^x-': { type: 'string' } }, propertyNames: { maxLength: 5 }, dependencies: { a: ['b'], c: { required: ['d'] } } },
    { definitions: { price: { type: 'number' } }, $defs: { id: true }, allOf: [{ $ref: '#/definitions/price' }], if: true, then: {}, else: false, contains: { type: 'integer' } },
  ])('an outputSchema with draft-07 subschemas: %j', (outputSchema) => {
    expect(validateWorkflowInput(withTask({ outputSchema })).tasks[0].outputSchema).toEqual(outputSchema);
  });

  it.each([
    [{ anyOf: [{ type: 'float' }] }, 'anyOf[0].type: must be one of object'],
    [{ oneOf: [] }, 'oneOf: must be a non-empty array of schemas'],
    [{ allOf: { type: 'string' } }, 'allOf: must be a non-empty array of schemas'],
    [{ type: 'object', additionalProperties: { type: 'float' } }, 'additionalProperties.type: must be one of object'],
    [{ not: 'string' }, 'not: must be a JSON Schema (an object, or true or false), got a string'],
    [{ type: 'array', items: [] }, 'items: must be a non-empty array of schemas'],
    [{ type: 'array', items: [{ type: 'string' }, 5] }, 'items[1]: must be a JSON Schema (an object, or true or false), got number 5'],
    [{ patternProperties: { '^a': { properties: { b: { type: 'dict' } } } } }, 'patternProperties["^a"].properties.b.type: must be one of object'],
    [{ definitions: { x: null } }, 'definitions.x: must be a JSON Schema (an object, or true or false), got null'],
    [{ $defs: [] }, '$defs: must be an object of schemas'],
    [{ dependencies: { a: [1] } }, 'dependencies.a: must be a schema or an array of property names'],
    [{ if: { type: 'int' }, then: true }, 'if.type: must be one of object'],
    [{ properties: { a: 1 } }, 'properties.a: must be a JSON Schema (an object, or true or false), got number 1'],
  ])('an outputSchema with a bad subschema: %j', (outputSchema, message) => {
    expect(refusal(withTask({ outputSchema })).message.startsWith(`tasks[0].outputSchema.${message}`)).toBe(true);
  });

  it('checkJsonSchema accepts boolean items and rejects a non-object root', () => {
    expect(() => checkJsonSchema({ type: 'array', items: true }, 's')).not.toThrow();
    expect(() => checkJsonSchema(true, 's')).toThrow(InvalidInput);
  });
});

describe('property: arbitrary JSON either validates (idempotently) or throws InvalidInput', () => {
  const seen = { accepted: 0, refused: 0 };
  function check(value: unknown): void {
    let result: unknown;
    try {
      result = validateWorkflowInput(value);
    } catch (err) {
      if (!(err instanceof InvalidInput)) throw new Error(`threw ${String((err as Error)?.name)}: ${String((err as Error)?.message)}`);
      expect(typeof err.field).toBe('string');
      expect(err.field.length).toBeGreaterThan(0);
      seen.refused++;
      return;
    }
    seen.accepted++;
    expect(validateWorkflowInput(clone(result))).toStrictEqual(result);
    // the result survives the JSON round trip Step Functions puts it through
    expect(clone(result)).toStrictEqual(result);
  }

  it('fc.jsonValue()', () => {
    fc.assert(fc.property(fc.jsonValue(), check), { numRuns: 500 });
  });

  it('objects shaped like an input, with arbitrary JSON in the fields', () => {
    const anyTask = fc.dictionary(fc.constantFrom('taskDetails', 'maxDuration', 'startingPoint', 'avoidDomains', 'outputType', 'outputSchema', 'files', 'maxInputTokens', 'extra'), fc.jsonValue({ maxDepth: 3 }));
    fc.assert(fc.property(fc.record({ session: fc.jsonValue({ maxDepth: 2 }), tasks: fc.array(anyTask, { maxLength: 3 }) }, { requiredKeys: [] }), check), { numRuns: 500 });
  });

  /** Every location in a JSON value, as a key path. */
  function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
    const out: Array<Array<string | number>> = [prefix];
    if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
    return out;
  }

  type Mutation = { at: number; op: 'replace' | 'delete' | 'add'; key: string; value: unknown };
  function mutate(input: unknown, mutations: Mutation[]): unknown {
    let root = clone(input) as unknown;
    for (const original of mutations) {
      const m = { ...original, value: original.value === undefined ? null : clone(original.value) };
      const all = paths(root);
      const path = all[m.at % all.length];
      if (path.length === 0) {
        if (m.op === 'replace') root = m.value;
        else if (m.op === 'add' && root !== null && typeof root === 'object' && !Array.isArray(root)) (root as Record<string, unknown>)[m.key] = m.value;
        continue;
      }
      const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], root);
      const last = path[path.length - 1];
      if (m.op === 'replace') parent[last] = m.value;
      else if (m.op === 'delete') {
        if (Array.isArray(parent)) parent.splice(last as number, 1);
        else delete parent[last];
      } else {
        const target = parent[last];
        if (Array.isArray(target)) target.push(m.value);
        else if (target !== null && typeof target === 'object') target[m.key] = m.value;
        else parent[last] = m.value;
      }
    }
    return root;
  }

  it('mutations of the valid sample input', () => {
    const mutation = fc.record({
      at: fc.nat(),
      op: fc.constantFrom<Mutation['op']>('replace', 'delete', 'add'),
      key: fc.oneof(fc.constantFrom('taskDetails', 'maxDuration', 'startingPoint', 'outputSchema', 'type', 'properties', 'required', 'items', 'avoidDomains'), fc.string()),
      value: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.constantFrom('', ' ', 'https://ok.example', 'ftp://x', 'x.com', 300000, 300001, 999, 1.5, -1, [], {}, null, 'structured_json', 'text', { type: 'object' }, { type: 'bogus' }),
      ),
    });
    seen.accepted = seen.refused = 0;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => check(mutate(SAMPLE, ms))),
      { numRuns: 1000 },
    );
    // both branches of the property were exercised
    expect(seen.accepted).toBeGreaterThan(20);
    expect(seen.refused).toBeGreaterThan(20);
  });

  it('valid inputs built from the allowed fields always validate', () => {
    const domain = fc.constantFrom('x.com', '*.ads.example.org', 'shop.co.uk');
    const url = fc.constantFrom('https://example.com', 'http://127.0.0.1:8080/a?b=c');
    const task = fc.record(
      {
        // Without vars, "{{" opens a placeholder that nothing fills (test/lambdas/shared/vars.test.ts).
        taskDetails: fc.string({ minLength: 1, maxLength: 50 }).filter((s) => s.trim() !== '' && !s.includes('{{')),
        maxDuration: fc.integer({ min: LIMITS.minDurationMs, max: LIMITS.maxDurationMs }),
        startingPoint: url,
        avoidDomains: fc.array(domain, { maxLength: 3 }),
        maxInputTokens: fc.integer({ min: 1, max: LIMITS.maxTokens }),
        outputType: fc.constantFrom('text', 'structured_json', 'structured_csv'),
        files: fc.array(fc.string({ minLength: 1, maxLength: 10 }).filter((s) => s.trim() !== ''), { maxLength: 3 }),
      },
      { requiredKeys: ['taskDetails'] },
    );
    const input = fc.record({
      session: fc.record({ startingPoint: url, avoidDomains: fc.array(domain, { maxLength: 3 }), maxOutputTokens: fc.integer({ min: 1, max: LIMITS.maxTokens }) }, { requiredKeys: [] }),
      tasks: fc.array(task, { minLength: 1, maxLength: LIMITS.maxTasks }),
    });
    fc.assert(
      fc.property(input, (value) => {
        const result = validateWorkflowInput(value);
        expect(result.tasks).toHaveLength(value.tasks.length);
        result.tasks.forEach((t, i) => expect(t.maxDuration).toBe(value.tasks[i].maxDuration ?? LIMITS.maxDurationMs));
        expect(validateWorkflowInput(clone(result))).toStrictEqual(result);
      }),
      { numRuns: 300 },
    );
  });
});

describe('task secrets (site credentials by reference)', () => {
  const SHOP_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun-sfn/shop-AbCdEf';
  const PASSWORD = 'hunter2-Tr0ub4dor&3-correct-horse';
  const ref = (secret: string, match = '*.shop.example.com') => ({ match, secret });

  it('accepts references by name and by ARN, keeping them as given and in order', () => {
    const secrets = [ref('webrun-sfn/shop'), ref(SHOP_ARN, 'bank.example.com'), ref('webrun-sfn/team/mail_1+x=y.z@w', 'mail.example.com')];
    const task = validateWorkflowInput(withTask({ secrets })).tasks[0];
    expect(task.secrets).toStrictEqual(secrets);
    // the validated task survives the JSON round trip and validates again unchanged
    expect(validateWorkflowInput({ tasks: [clone(task)] }).tasks[0]).toStrictEqual(task);
  });

  it('accepts a GovCloud / China partition ARN and a partial ARN (no suffix)', () => {
    for (const secret of ['arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:webrun-sfn/shop-AbCdEf', 'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:webrun-sfn/shop', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:webrun-sfn/shop']) {
      expect(validateWorkflowInput(withTask({ secrets: [ref(secret)] })).tasks[0].secrets).toStrictEqual([ref(secret)]);
    }
  });

  it(`accepts exactly ${LIMITS.maxSiteCredentials} references`, () => {
    const secrets = Array.from({ length: LIMITS.maxSiteCredentials }, (_, i) => ref(`webrun-sfn/s${i}`, `s${i}.example.com`));
    expect(validateWorkflowInput(withTask({ secrets })).tasks[0].secrets).toHaveLength(LIMITS.maxSiteCredentials);
  });

  it('a task without secrets has no secrets key', () => {
    expect('secrets' in validateWorkflowInput(withTask({})).tasks[0]).toBe(false);
  });

  const cases: Array<[string, unknown, string]> = [
    ['secrets not an array', { match: '*.shop.example.com', secret: 'webrun-sfn/shop' }, 'tasks[0].secrets'],
    ['secrets a string', 'webrun-sfn/shop', 'tasks[0].secrets'],
    ['secrets null', null, 'tasks[0].secrets'],
    ['an empty secrets array', [], 'tasks[0].secrets'],
    [`${LIMITS.maxSiteCredentials + 1} entries`, Array.from({ length: LIMITS.maxSiteCredentials + 1 }, (_, i) => ref(`webrun-sfn/s${i}`)), 'tasks[0].secrets'],
    ['an item that is a string', ['webrun-sfn/shop'], 'tasks[0].secrets[0]'],
    ['an item that is null', [null], 'tasks[0].secrets[0]'],
    ['an item that is an array', [ref('webrun-sfn/a'), [ref('webrun-sfn/b')]], 'tasks[0].secrets[1]'],
    ['an unknown key in an item', [{ ...ref('webrun-sfn/shop'), note: 'x' }], 'tasks[0].secrets[0].note'],
    ['an unknown key in the second item', [ref('webrun-sfn/a'), { ...ref('webrun-sfn/b'), username: 'ada' }], 'tasks[0].secrets[1].username'],
    ['a missing match', [{ secret: 'webrun-sfn/shop' }], 'tasks[0].secrets[0].match'],
    ['an empty match', [ref('webrun-sfn/shop', '')], 'tasks[0].secrets[0].match'],
    ['a whitespace match', [ref('webrun-sfn/shop', '  ')], 'tasks[0].secrets[0].match'],
    ['a numeric match', [{ match: 1, secret: 'webrun-sfn/shop' }], 'tasks[0].secrets[0].match'],
    ['a missing secret', [{ match: '*.shop.example.com' }], 'tasks[0].secrets[0].secret'],
    ['an empty secret', [ref('')], 'tasks[0].secrets[0].secret'],
    ['a secret object', [{ match: 'x.com', secret: { name: 'webrun-sfn/shop' } }], 'tasks[0].secrets[0].secret'],
    ['a name without the prefix', [ref('other/x')], 'tasks[0].secrets[0].secret'],
    ['a name that only contains the prefix later', [ref('team/webrun-sfn/x')], 'tasks[0].secrets[0].secret'],
    ['the prefix without its slash', [ref('webrun-sfnshop')], 'tasks[0].secrets[0].secret'],
    ['an ARN whose name lacks the prefix', [ref('arn:aws:secretsmanager:us-east-1:123456789012:secret:other/x-AbCdEf')], 'tasks[0].secrets[0].secret'],
    ['a malformed ARN (short account id)', [ref('arn:aws:secretsmanager:us-east-1:12345:secret:webrun-sfn/shop-AbCdEf')], 'tasks[0].secrets[0].secret'],
    ['an ARN of another service', [ref('arn:aws:ssm:us-east-1:123456789012:parameter/webrun-sfn/shop')], 'tasks[0].secrets[0].secret'],
    ['an ARN without a name', [ref('arn:aws:secretsmanager:us-east-1:123456789012:secret:')], 'tasks[0].secrets[0].secret'],
    ['a name with spaces', [ref('webrun-sfn/my shop')], 'tasks[0].secrets[0].secret'],
    ['a name with a colon', [ref('webrun-sfn/shop:prod')], 'tasks[0].secrets[0].secret'],
  ];

  it.each(cases.map(([name, secrets, field]) => ({ name, secrets, field })))('refuses $name → $field', ({ secrets, field }) => {
    const err = refusal(withTask({ secrets }));
    expect(err.field).toBe(field);
    expect(err.message.startsWith(`${field}: `)).toBe(true);
  });

  it('a name without the prefix is refused with a message naming the prefix', () => {
    const err = refusal(withTask({ secrets: [ref('other/x')] }));
    expect(err.message).toContain('webrun-sfn/');
    expect(err.message).toContain('"other/x"');
  });

  it.each([
    ['beside a secret', { ...ref('webrun-sfn/shop'), fields: { username: 'ada@example.com', password: PASSWORD } }],
    ['instead of a secret', { match: '*.shop.example.com', fields: { username: 'ada@example.com', password: PASSWORD } }],
    ['with an unknown key too', { match: '*.shop.example.com', fields: { password: PASSWORD }, note: PASSWORD }],
    ['as a string', { match: '*.shop.example.com', fields: PASSWORD }],
  ])('inline fields (%s) are refused on .fields without echoing any value', (_name, item) => {
    const err = refusal(withTask({ secrets: [ref('webrun-sfn/ok'), item] }));
    expect(err.field).toBe('tasks[0].secrets[1].fields');
    expect(err.message.startsWith('tasks[0].secrets[1].fields: ')).toBe(true);
    for (const text of [err.message, String(err.stack), JSON.stringify(err)]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain('ada@example.com');
    }
    expect(err.message).toContain('Secrets Manager');
  });

  it('a refused secret reference on a later task names that task', () => {
    const err = refusal({ tasks: [{ taskDetails: 'a', secrets: [ref('webrun-sfn/a')] }, { taskDetails: 'b', secrets: [ref('webrun-sfn/b'), ref('nope')] }] });
    expect(err.field).toBe('tasks[1].secrets[1].secret');
  });
});

describe('lengths are counted in characters (code points), as the JSON Schema counts them', () => {
  it('accepts 15,000 emoji in taskDetails and 20,000 characters with emoji among them (once refused as 30000 and 20002)', () => {
    expect(validateWorkflowInput({ tasks: [{ taskDetails: '😀'.repeat(15_000) }] }).tasks[0].taskDetails).toHaveLength(30_000);
    expect(() => validateWorkflowInput({ vars: { a: `${'x'.repeat(19_998)}😀😀` }, tasks: [{ taskDetails: `${'x'.repeat(19_998)}😀😀` }] })).not.toThrow();
    expect(() => validateWorkflowInput({ session: { profileId: '😀'.repeat(200) }, tasks: [{ taskDetails: 'a' }] })).not.toThrow();
  });

  it.each([
    ['taskDetails', { tasks: [{ taskDetails: `${'x'.repeat(19_999)}😀😀` }] }, 'tasks[0].taskDetails: must be at most 20000 characters, got 20001'],
    ['profileId', { session: { profileId: '😀'.repeat(201) }, tasks: [{ taskDetails: 'a' }] }, 'session.profileId: must be at most 200 characters, got 201'],
    ['a variable', { vars: { a: `${'x'.repeat(19_999)}😀😀` }, tasks: [{ taskDetails: 'a' }] }, 'vars.a: must be at most 20000 characters, got 20001'],
  ])('refuses %s one character too long, counting characters in the message too', (_name, input, message) => {
    expect(refusal(input).message).toBe(message);
  });

  it('counts a lone surrogate as one character', () => {
    expect(refusal({ session: { profileId: '\uD83D'.repeat(201) }, tasks: [{ taskDetails: 'a' }] }).message).toBe('session.profileId: must be at most 200 characters, got 201');
  });
});

describe('the exact message of a refusal names the field and the limit', () => {
  it.each([
    [{ tasks: [{ taskDetails: 'a' }, { taskDetails: 'b', maxDuration: 0 }] }, 'tasks[1].maxDuration: must be between 1000 and 300000, got 0'],
    [{ tasks: [{ taskDetails: 'a', maxDuration: 1500.5 }] }, 'tasks[0].maxDuration: must be an integer, got number 1500.5'],
    [{ tasks: [{ taskDetails: 'a', maxDuration: '180000' }] }, 'tasks[0].maxDuration: must be an integer, got a string'],
    [{ tasks: [{}] }, 'tasks[0].taskDetails: must be a string, got nothing'],
    [{ session: {} }, 'tasks: must be an array of tasks, got nothing'],
    [{ tasks: [] }, 'tasks: must contain at least one task'],
    [[], 'input: must be a workflow input object with "tasks", got an array'],
    [{ tasks: [{ taskDetails: 'a', outputType: 'xml' }] }, 'tasks[0].outputType: must be one of text, structured_json, structured_csv, got "xml"'],
    [{ session: { startingPoint: 'ftp://x' }, tasks: [{ taskDetails: 'a' }] }, 'session.startingPoint: must be an http(s) URL, got ftp:'],
    [{ session: { avoidDomains: ['https://y.com'] }, tasks: [{ taskDetails: 'a' }] }, 'session.avoidDomains[0]: must be a domain name like "example.com", got "https://y.com"'],
    [{ tasks: [{ taskDetails: 'a', outputSchema: { type: 'object' } }] }, 'tasks[0].outputSchema: needs outputType "structured_json" or "structured_csv"'],
    [{ tasks: [{ taskDetails: 'a', secrets: [] }] }, 'tasks[0].secrets: must hold 1 to 10 entries, got 0'],
    [
      { tasks: [{ taskDetails: 'a', timeout: 5 }] },
      'tasks[0].timeout: is not a known field (allowed: taskDetails, maxDuration, startingPoint, avoidDomains, maxInputTokens, maxOutputTokens, outputType, outputSchema, files, guardrails, secrets)',
    ],
    [{ tasks: [{ taskDetails: 'a' }], variables: {} }, 'variables: is not a known field (allowed: vars, session, tasks)'],
  ])('%j', (input, message) => {
    const err = refusal(input);
    expect(err.message).toBe(message);
    expect(err.field).toBe(message.slice(0, message.indexOf(': ')));
  });
});

describe('workflowInputIssues lists every problem, one per field, in the order the schema declares them', () => {
  it('a valid input has none', () => {
    expect(workflowInputIssues(clone(SAMPLE))).toEqual([]);
  });

  it('an input with several mistakes', () => {
    const input = { session: { startingPoint: 'x', maxInputTokens: 0, colour: 'red' }, tasks: [{ taskDetails: ' ', maxDuration: 1.5 }, 'click'] };
    expect(workflowInputIssues(input).map((i) => [formatPath(i.path), i.message])).toEqual([
      ['session.startingPoint', 'is not a valid URL: "x"'],
      ['session.maxInputTokens', 'must be between 1 and 1000000, got 0'],
      ['session.colour', 'is not a known field (allowed: startingPoint, profileId, avoidDomains, maxInputTokens, maxOutputTokens, guardrails, maxCostUsd, minBalanceUsd)'],
      // 1.5 is also below 1000: one issue per field, the first thing wrong with it
      ['tasks[0].taskDetails', 'must not be empty'],
      ['tasks[0].maxDuration', 'must be an integer, got number 1.5'],
      ['tasks[1]', 'must be an object with taskDetails, got a string'],
    ]);
    // validateWorkflowInput throws the first of them
    expect(refusal(input).message).toBe('session.startingPoint: is not a valid URL: "x"');
  });
});

describe('nesting depth is bounded over the whole input, before any other check', () => {
  /** An outputSchema whose innermost schema sits `levels` objects deep inside it (outputSchema itself is 1). */
  function nestedItems(levels: number): Record<string, unknown> {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 1; i < levels; i++) schema = { type: 'array', items: schema };
    return schema;
  }
  /** A one-task input whose deepest container is at `depth` (the input object is level 1; outputSchema is level 4). */
  const inputOfDepth = (depth: number) => ({ tasks: [{ taskDetails: 'x', outputType: 'structured_json', outputSchema: nestedItems(depth - 3) }] });
  /** The same shape as DESIGN.md's example, nested with properties: 2 levels per schema. */
  function nestedProperties(n: number): Record<string, unknown> {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < n; i++) schema = { type: 'object', properties: { a: schema } };
    return schema;
  }

  it(`an input exactly ${MAX_INPUT_DEPTH} levels deep is accepted, one level more is refused`, () => {
    expect(validateWorkflowInput(inputOfDepth(MAX_INPUT_DEPTH)).tasks[0].outputSchema).toStrictEqual(nestedItems(MAX_INPUT_DEPTH - 3));
    const err = refusal(inputOfDepth(MAX_INPUT_DEPTH + 1));
    expect(err.message).toBe(`tasks[0].outputSchema: is nested too deeply (more than ${MAX_INPUT_DEPTH} levels)`);
  });

  it.each([3_000, 5_000])('an outputSchema nested %i deep is refused with InvalidInput naming tasks[0].outputSchema, quickly', (n) => {
    const input = { tasks: [{ taskDetails: 'x', outputType: 'structured_json', outputSchema: nestedProperties(n) }] };
    const started = Date.now();
    const err = refusal(input);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err.field).toBe('tasks[0].outputSchema');
    expect(err.message).toBe('tasks[0].outputSchema: is nested too deeply (more than 32 levels)');
  });

  it('checkJsonSchema walks a schema nested 20,000 deep without recursion (recursion would overflow the stack)', () => {
    const deep = nestedItems(20_000);
    expect(() => checkJsonSchema(deep, 's')).not.toThrow();
    (function innermost(s: Record<string, unknown>): void {
      let node = s;
      while (typeof node.items === 'object') node = node.items as Record<string, unknown>;
      node.type = 'float';
    })(deep);
    expect(() => checkJsonSchema(deep, 's')).toThrow(/^s\.items\.items\..*\.type: must be one of object/);
  });

  it.each([
    ['an unknown field', (deep: unknown) => ({ tasks: [{ taskDetails: 'x', note: deep }] }), 'tasks[0].note'],
    ['a string field given an array', (deep: unknown) => ({ tasks: [{ taskDetails: deep }] }), 'tasks[0].taskDetails'],
    ['an item of a session list', (deep: unknown) => ({ session: { avoidDomains: deep }, tasks: [{ taskDetails: 'x' }] }), 'session.avoidDomains[0]'],
    ['a task given as an array', (deep: unknown) => ({ tasks: deep }), 'tasks[0]'],
  ])('deep nesting in %s is refused naming that field', (_name, make, field) => {
    let deep: unknown = [];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(refusal(make(deep)).message).toBe(`${field}: is nested too deeply (more than 32 levels)`);
  });

  it('is checked before the size limit and before the fields', () => {
    const input = { tasks: [{ taskDetails: 'x'.repeat(LIMITS.maxTaskDetailsChars + 1), maxDuration: 0, outputSchema: nestedProperties(20) }, { taskDetails: 'y'.repeat(LIMITS.maxInputBytes) }] };
    expect(workflowInputIssues(input).map((i) => i.message)).toEqual(['is nested too deeply (more than 32 levels)']);
  });

  it('a cyclic object (a programmatic caller) is refused, not walked forever', () => {
    const task: Record<string, unknown> = { taskDetails: 'x' };
    task.outputSchema = task;
    expect(refusal({ tasks: [task] }).field).toBe('tasks[0].outputSchema');
  });
});

describe('text made only of invisible characters is empty', () => {
  const INVISIBLE = ['\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', '\u00A0', '\u3000', '\u2028', '\u180E', '\u00AD', '\u200E', '\u202E', '\u2800', '\u3164', '\uFE0F'];

  it.each(INVISIBLE.map((c) => [`U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`, c]))('taskDetails of %s alone, repeated and mixed with spaces is refused', (_name, c) => {
    for (const taskDetails of [c, c.repeat(50), ` ${c}\n${c}\t`]) {
      expect(refusal(withTask({ taskDetails })).message).toBe('tasks[0].taskDetails: must not be empty');
    }
  });

  it('every zero-width character together is refused', () => {
    expect(refusal(withTask({ taskDetails: '\u200B\u200C\u200D\u2060\uFEFF' })).field).toBe('tasks[0].taskDetails');
  });

  it.each([
    ['session.profileId', withSession({ profileId: '\u200B' })],
    ['session.avoidDomains[0]', withSession({ avoidDomains: ['\uFEFF'] })],
    ['tasks[0].avoidDomains[0]', withTask({ avoidDomains: ['\u2060\u2060'] })],
    ['tasks[0].files[1]', withTask({ files: ['file-1', '\u200D'] })],
    ['tasks[0].secrets[0].match', withTask({ secrets: [{ match: '\u200C', secret: 'webrun-sfn/shop' }] })],
    ['tasks[0].secrets[0].secret', withTask({ secrets: [{ match: 'x.com', secret: '\u200B\u200B' }] })],
  ])('%s of invisible characters is refused as empty', (field, input) => {
    expect(refusal(input).message).toBe(`${field}: must not be empty`);
  });

  it('text with one visible character among invisible ones is kept as given', () => {
    const taskDetails = '\u200BOpen the cart\u200D';
    expect(validateWorkflowInput(withTask({ taskDetails })).tasks[0].taskDetails).toBe(taskDetails);
    expect(validateWorkflowInput(withTask({ taskDetails: '\u200B\u00E9' })).tasks[0].taskDetails).toBe('\u200B\u00E9');
  });
});

describe('a guardrail rule\'s `when`: text, or /regex/flags', () => {
  const rule = (when: string) => withSession({ guardrails: { rules: [{ when, answerFromSecret: { secret: 'webrun-sfn/shop', field: 'pin' } }] } });

  it.each(['confirm purchase', '/verification code/i', '/^which (account|profile)\\?$/ims', '/a/dgsy', 'a / b', '/usr/bin/ folder'])('accepts %j', (when) => {
    expect(validateWorkflowInput(rule(when)).session.guardrails?.rules?.[0].when).toBe(when);
  });

  // "/CODE/I" was a text rule for the literal "/CODE/I", and "//" answered every question, here with a secret.
  it.each([
    ['/CODE/I', 'has the flag "I", which is not a regex flag (flags are d, g, i, m, s, u, v, y, in lower case; a text shaped /.../letters is read as a regex)'],
    ['/code/x', 'has the flag "x", which is not a regex flag'],
    ['/code/ii', 'has the flag "i" twice'],
    ['//', 'is an empty /regex/, which matches every question: write a pattern between the slashes'],
    ['//i', 'is an empty /regex/'],
    ['/(/', 'is not a valid /regex/flags: '],
  ])('refuses %j naming the problem', (when, message) => {
    const err = refusal(rule(when));
    expect(err.field).toBe('session.guardrails.rules[0].when');
    expect(err.message).toContain(`session.guardrails.rules[0].when: ${message}`);
  });
});

describe('a top-level "$schema" (for editors) is accepted and ignored', () => {
  it('is accepted and absent from the validated input', () => {
    const result = validateWorkflowInput({ $schema: '../schema/workflow-input.schema.json', ...clone(SAMPLE) });
    expect(result).toStrictEqual(validateWorkflowInput(clone(SAMPLE)));
    expect('$schema' in result).toBe(false);
  });

  it('must be a string', () => {
    expect(refusal({ $schema: 1, tasks: [{ taskDetails: 'x' }] }).message).toBe('$schema: must be a string, got number 1');
  });

  it('is a field of the input only, not of a session or a task', () => {
    expect(refusal(withSession({ $schema: 'x' })).field).toBe('session.$schema');
    expect(refusal(withTask({ $schema: 'x' })).field).toBe('tasks[0].$schema');
  });
});
