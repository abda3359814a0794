/** Variables (`vars` and `{{name}}` placeholders): filled by the validator, before any session exists. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LIMITS, WebrunErrors } from '../../../lambdas/shared/contract';
import { InvalidInput } from '../../../lambdas/shared/errors';
import { validateWorkflowInput } from '../../../lambdas/shared/input';
import { fillPlaceholders, placeholderNames } from '../../../lambdas/shared/vars';
import { startEmulator, type Emulator } from '../../../local/emulator';
import { runLocalWorkflow } from '../../../local/runner';
import { builtWorkflow } from '../../../local/workflow';

function refusal(input: unknown): InvalidInput {
  try {
    validateWorkflowInput(input);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInput);
    return err as InvalidInput;
  }
  throw new Error(`expected ${JSON.stringify(input).slice(0, 200)} to be refused`);
}

const inputSchema = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'schema', 'workflow-input.schema.json'), 'utf8')) as object);

describe('vars fill {{name}} placeholders', () => {
  it('in taskDetails, a task\'s startingPoint and session.startingPoint; the result carries no vars', () => {
    const input = {
      vars: { sku: 'B0-77', qty: 3, gift: false },
      session: { startingPoint: 'https://shop.example.com/p/{{sku}}', profileId: '{{sku}}' },
      tasks: [
        { taskDetails: 'Add {{qty}} of {{ sku }} to the cart (gift wrap: {{gift}})', startingPoint: 'https://shop.example.com/search?q={{sku}}' },
        { taskDetails: 'Read the total', outputType: 'structured_json', outputSchema: { type: 'object', description: '{{not a placeholder here}}' } },
      ],
    };
    const before = JSON.stringify(input);
    const out = validateWorkflowInput(input);
    expect(out).toEqual({
      session: { startingPoint: 'https://shop.example.com/p/B0-77', profileId: '{{sku}}' },
      tasks: [
        { taskDetails: 'Add 3 of B0-77 to the cart (gift wrap: false)', startingPoint: 'https://shop.example.com/search?q=B0-77', maxDuration: LIMITS.maxDurationMs },
        { taskDetails: 'Read the total', outputType: 'structured_json', outputSchema: { type: 'object', description: '{{not a placeholder here}}' }, maxDuration: LIMITS.maxDurationMs },
      ],
    });
    expect('vars' in out).toBe(false);
    // The caller's input is left as it was.
    expect(JSON.stringify(input)).toBe(before);
    // And the validated input validates to itself (the start step may see it again).
    expect(validateWorkflowInput(out)).toEqual(out);
  });

  it('leaves an input without placeholders as it was, vars or not (unused vars are fine)', () => {
    expect(validateWorkflowInput({ vars: { unused: 'x' }, tasks: [{ taskDetails: 'Open {the} page }}' }] })).toEqual({ session: {}, tasks: [{ taskDetails: 'Open {the} page }}', maxDuration: LIMITS.maxDurationMs }] });
  });

  it.each([
    ['an unknown placeholder, no vars', { tasks: [{ taskDetails: 'Buy {{sku}}' }] }, 'tasks[0].taskDetails', /unknown placeholder \{\{sku\}\} \(the input has no "vars"\)/],
    ['an unknown placeholder, other vars', { vars: { sku: 'x' }, tasks: [{ taskDetails: 'ok' }, { taskDetails: 'Buy {{sku}} on {{date}} and {{date}}' }] }, 'tasks[1].taskDetails', /an unknown placeholder \{\{date\}\} \(vars has sku\)$/],
    ['several unknown', { vars: {}, session: { startingPoint: 'https://x.com/{{a}}/{{b}}' }, tasks: [{ taskDetails: 'x' }] }, 'session.startingPoint', /unknown placeholders \{\{a\}\}, \{\{b\}\}/],
    ['an empty placeholder', { vars: { a: '1' }, tasks: [{ taskDetails: 'Buy {{ }} now' }] }, 'tasks[0].taskDetails', /malformed placeholder "\{\{ \}\}"/],
    ['a name with a space', { vars: { a: '1' }, tasks: [{ taskDetails: 'Buy {{a b}}' }] }, 'tasks[0].taskDetails', /malformed placeholder "\{\{a b\}\}"/],
    ['an unclosed placeholder', { vars: { name: '1' }, tasks: [{ taskDetails: 'Hello {{name and bye' }] }, 'tasks[0].taskDetails', /malformed placeholder "\{\{name"/],
    ['a task startingPoint', { vars: { a: '1' }, tasks: [{ taskDetails: 'x', startingPoint: 'https://x.com/{{1a}}' }] }, 'tasks[0].startingPoint', /malformed placeholder "\{\{1a\}\}"/],
  ])('refuses %s with Webrun.InvalidInput naming the field and the placeholder', (_name, input, field, message) => {
    const err = refusal(input);
    expect(err.name).toBe(WebrunErrors.InvalidInput);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('checks the filled-in fields as any other: a startingPoint must still be a URL, taskDetails keep their limit', () => {
    expect(refusal({ vars: { u: 'not a url' }, tasks: [{ taskDetails: 'x', startingPoint: '{{u}}' }] }).field).toBe('tasks[0].startingPoint');
    const long = 'x'.repeat(15_000);
    expect(refusal({ vars: { a: long }, tasks: [{ taskDetails: '{{a}}{{a}}' }] }).message).toMatch(/tasks\[0\]\.taskDetails: must be at most 20000 characters/);
  });

  it('keeps the input size limit once the vars are filled in: a short variable in every task cannot grow the state', () => {
    // 20 tasks of one 19,990-character variable: about 20 KB as written, about 400 KB as every state would carry it.
    const input = { vars: { big: 'x'.repeat(19_990) }, tasks: Array.from({ length: LIMITS.maxTasks }, () => ({ taskDetails: '{{big}}' })) };
    expect(Buffer.byteLength(JSON.stringify(input))).toBeLessThan(LIMITS.maxInputBytes);
    const err = refusal(input);
    expect(err.field).toBe('input');
    expect(err.message).toMatch(new RegExp(`^input: is \\d+ bytes once its vars are filled in; at most ${LIMITS.maxInputBytes} are accepted$`));
    // Three such tasks stay well inside it.
    expect(validateWorkflowInput({ ...input, tasks: input.tasks.slice(0, 3) }).tasks).toHaveLength(3);
  });

  it.each([
    ['null', { a: null }, 'vars.a', /must be a string, number or boolean, got null/],
    ['an object', { a: { b: 1 } }, 'vars.a', /must be a string, number or boolean, got an object/],
    ['an array', { a: [1] }, 'vars.a', /got an array/],
    ['a name that is not one', { 'a b': 'x' }, 'vars["a b"]', /is not a variable name/],
    ['a value holding a placeholder', { a: 'see {{b}}', b: 'x' }, 'vars.a', /must not contain "\{\{"/],
    ['not an object', ['a'], 'vars', /must be an object of variables by name, got an array/],
    ['too many', Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`v${i}`, 'x'])), 'vars', /at most 100 variables, got 101/],
  ])('refuses vars with %s', (_name, vars, field, message) => {
    const err = refusal({ vars, tasks: [{ taskDetails: 'x' }] });
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  // valibot's records skip these keys: `{{constructor}}` was "unknown" though vars held it, `__proto__: null` passed.
  it.each(['__proto__', 'constructor', 'prototype'])('refuses the reserved name %s by name, in vars and in a placeholder, as the JSON Schema does', (name) => {
    const schema = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'schema', 'workflow-input.schema.json'), 'utf8')) as object;
    const validate = new Ajv({ allErrors: true }).compile(schema);
    // As JSON.parse reads it (an own key, even __proto__), with a value of every kind.
    for (const value of ['"Acme"', 'null', '{"x":[1]}']) {
      const input: unknown = JSON.parse(`{"vars":{"${name}":${value}},"tasks":[{"taskDetails":"Log in as {{${name}}}"}]}`);
      const err = refusal(input);
      expect(err.field).toBe(`vars.${name}`);
      expect(err.message).toMatch(/is a reserved name: __proto__, constructor and prototype cannot be variable names/);
      expect(validate(input)).toBe(false);
    }
    expect(refusal({ vars: { a: '1' }, tasks: [{ taskDetails: `Log in as {{ ${name} }}` }] }).message).toMatch(new RegExp(`^tasks\\[0\\]\\.taskDetails: has a placeholder "\\{\\{ ${name} \\}\\}" whose name is a reserved name`));
    // A name that merely contains one is an ordinary name.
    expect(validateWorkflowInput({ vars: { [`${name}_x`]: 'Acme' }, tasks: [{ taskDetails: `{{${name}_x}}` }] }).tasks[0].taskDetails).toBe('Acme');
    expect(validate({ vars: { [`${name}_x`]: 'Acme' }, tasks: [{ taskDetails: 'x' }] })).toBe(true);
  });

  // A number is filled in as String(n): 1234567890123456789 was sent as 1234567890123456800, 1e21 as 1e+21.
  it.each([
    ['1234567890123456789', '1234567890123456800'],
    ['9007199254740993', '9007199254740992'],
    ['-12345678901234567890', '-12345678901234567000'],
    ['1e21', '1e+21'],
    ['0.0000001', '1e-7'],
  ])('refuses the number %s, which would be filled in as %s, asking for it in quotes (as the JSON Schema does)', (json, filled) => {
    const input: unknown = JSON.parse(`{"vars":{"id":${json}},"tasks":[{"taskDetails":"Open order {{id}}"}]}`);
    const err = refusal(input);
    expect(err.field).toBe('vars.id');
    expect(err.message).toContain(`must be in quotes: as a number it would be filled in as ${filled}`);
    expect(err.message).toMatch(/write it as a string$/);
    expect(inputSchema(input)).toBe(false);
    // In quotes, it is filled in as written.
    expect(validateWorkflowInput(JSON.parse(`{"vars":{"id":"${json}"},"tasks":[{"taskDetails":"Open order {{id}}"}]}`)).tasks[0].taskDetails).toBe(`Open order ${json}`);
  });

  it('property: a number is accepted exactly when it is filled in with the digits it was written with, by the validator and the JSON Schema alike (fixed seed)', () => {
    const number = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.bigInt({ min: -(10n ** 22n), max: 10n ** 22n }).map(Number), fc.constantFrom(9007199254740991, -9007199254740991, 9007199254740992, 1e-6, 9.99e-7, 1.5, 24.9));
    fc.assert(
      fc.property(number, (n) => {
        const input = { vars: { n }, tasks: [{ taskDetails: '{{n}}' }] };
        let filled: string | undefined;
        try {
          filled = validateWorkflowInput(input).tasks[0].taskDetails;
        } catch {
          filled = undefined;
        }
        // Written as JSON and read back, the number's text is String(n); it keeps its digits when that text has no
        // exponent and, for a whole number, is the exact integer.
        const text = String(n);
        const keepsDigits = !/e/.test(text) && (!Number.isInteger(n) || BigInt(text) === BigInt(n)) && Math.abs(n) <= Number.MAX_SAFE_INTEGER;
        expect(filled === undefined, text).toBe(!keepsDigits);
        if (filled !== undefined) expect(filled).toBe(text);
        expect(inputSchema(JSON.parse(JSON.stringify(input))), text).toBe(keepsDigits);
      }),
      { seed: 20260301, numRuns: 2000 },
    );
  });

  it('the JSON Schema file (for editors) accepts vars and refuses a null value', () => {
    const schema = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'schema', 'workflow-input.schema.json'), 'utf8')) as object;
    const validate = new Ajv({ allErrors: true }).compile(schema);
    expect(validate({ vars: { sku: 'x', n: 1, b: true }, tasks: [{ taskDetails: 'Buy {{sku}}' }] })).toBe(true);
    expect(validate({ vars: { sku: null }, tasks: [{ taskDetails: 'Buy {{sku}}' }] })).toBe(false);
    expect(validate({ vars: { 'a b': 'x' }, tasks: [{ taskDetails: 'x' }] })).toBe(false);
  });
});

describe('fillPlaceholders', () => {
  it('fills each placeholder once and never re-reads a filled value', () => {
    expect(fillPlaceholders('{{a}}{{b}}', { a: '}}', b: '{' })).toEqual({ text: '}}{' });
    expect(placeholderNames('{{a}} {{ b }} {{a}} {{bad name}}')).toEqual(['a', 'b']);
  });

  it('property: a text without "{{" is returned as it is, whatever the vars', () => {
    fc.assert(
      fc.property(fc.string().filter((s) => !s.includes('{{')), fc.dictionary(fc.string({ minLength: 1 }), fc.string()), (text, vars) => {
        expect(fillPlaceholders(text, vars)).toEqual({ text });
      }),
      { numRuns: 300 },
    );
  });

  it('property: every placeholder of known names is replaced by its value', () => {
    const name = fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/);
    const plain = fc.string({ maxLength: 10 }).filter((s) => !s.includes('{') && !s.includes('}'));
    fc.assert(
      fc.property(fc.array(fc.tuple(plain, name), { maxLength: 5 }), plain, fc.string({ maxLength: 10 }).filter((s) => !s.includes('{{')), (parts, tail, value) => {
        const text = parts.map(([before, n]) => `${before}{{${n}}}`).join('') + tail;
        const vars = Object.fromEntries(parts.map(([, n]) => [n, value]));
        expect(fillPlaceholders(text, vars)).toEqual({ text: parts.map(([before]) => `${before}${value}`).join('') + tail });
      }),
      { numRuns: 300 },
    );
  });
});

describe('through the local workflow (the start step validates)', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ apiKey: 'vars-key', pendingPolls: 0 });
  });
  afterAll(() => emulator.close());
  beforeEach(() => emulator.reset());
  const workflow = builtWorkflow('poll');

  it('sends the filled-in task and starting point to the API', async () => {
    const summary = await runLocalWorkflow({
      input: { vars: { sku: 'K-42' }, session: { startingPoint: 'https://shop.example.com/p/{{sku}}' }, tasks: [{ taskDetails: 'Read the price of {{sku}}' }] },
      baseUrl: emulator.url,
      apiKey: 'vars-key',
      waitScale: 0,
      workflow,
    });
    expect(summary.status).toBe('SUCCEEDED');
    const [session] = emulator.ledger().sessions;
    expect(session.startBody).toMatchObject({ initialTask: { startingPoint: 'https://shop.example.com/p/K-42' } });
    expect(session.tasks.map((t) => t.taskDetails)).toEqual(['Read the price of K-42']);
  });

  it('fails an input that the vars grow past the size limit with Webrun.InvalidInput before any session', async () => {
    const input = { vars: { big: 'x'.repeat(19_990) }, tasks: Array.from({ length: LIMITS.maxTasks }, () => ({ taskDetails: '{{big}}' })) };
    const summary = await runLocalWorkflow({ input, baseUrl: emulator.url, apiKey: 'vars-key', waitScale: 0, workflow });
    expect(summary.error?.name).toBe(WebrunErrors.InvalidInput);
    expect(summary.error?.cause).toMatch(/once its vars are filled in/);
    expect(emulator.ledger().created).toBe(0);
  });

  it('fails an unknown placeholder with Webrun.InvalidInput before any session', async () => {
    const summary = await runLocalWorkflow({ input: { tasks: [{ taskDetails: 'Read {{sku}}' }] }, baseUrl: emulator.url, apiKey: 'vars-key', waitScale: 0, workflow });
    expect(summary.status).toBe('FAILED');
    expect(summary.error?.name).toBe(WebrunErrors.InvalidInput);
    expect(summary.error?.cause).toContain('tasks[0].taskDetails: has an unknown placeholder {{sku}}');
    expect(emulator.ledger().created).toBe(0);
  });
});
