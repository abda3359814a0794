/**
 * The JSON Schema files in schema/ are generated from the valibot schemas (`npm run schema`) and committed: they
 * must be exactly what the generator writes, and every example and config file in the repo must name the right
 * one in "$schema" and pass it, as an editor would check it.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonSchemaFiles, SCHEMA_DIR, staleJsonSchemaFiles } from '../../bin/schema';
import { validateWorkflowInput } from '../../lambdas/shared/input';
import { loadConfig, parseConfig } from '../../lib/config';

const root = path.join(__dirname, '..', '..');
const INPUT_SCHEMA = path.join(SCHEMA_DIR, 'workflow-input.schema.json');
const CONFIG_SCHEMA = path.join(SCHEMA_DIR, 'webrun-config.schema.json');
/** Config files; every other JSON file under examples/ is a workflow input. */
const CONFIG_FILES = ['webrun.config.json', 'examples/config/full.json'];
/** Not a workflow input nor a config: the local stand-in for Secrets Manager, which has no schema. */
/** Not inputs: the local secrets stand-in, and emulator scripts (`--emulator-tasks`, checked by the emulator). */
const NO_SCHEMA = ['examples/site-secrets.local.json', 'examples/guardrails.emulator.json'];

const readJson = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));

function jsonFilesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return jsonFilesUnder(full);
    return name.endsWith('.json') ? [path.relative(root, full)] : [];
  });
}

const ajv = new Ajv({ allErrors: true });
const validateInput = ajv.compile(readJson(INPUT_SCHEMA) as object);
const validateConfig = ajv.compile(readJson(CONFIG_SCHEMA) as object);

function errorsOf(validate: ValidateFunction, value: unknown): string[] {
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

describe('schema/*.json', () => {
  it('are exactly what `npm run schema` generates (run it and commit the result if this fails)', () => {
    const generated = jsonSchemaFiles();
    expect(readdirSync(SCHEMA_DIR).sort()).toEqual(Object.keys(generated).sort());
    for (const [name, text] of Object.entries(generated)) expect(readFileSync(path.join(SCHEMA_DIR, name), 'utf8'), name).toBe(text);
    expect(staleJsonSchemaFiles()).toEqual([]);
  });

  it('a file that differs from the generated one is reported stale', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-schema-'));
    for (const [name, text] of Object.entries(jsonSchemaFiles())) writeFileSync(path.join(dir, name), text);
    expect(staleJsonSchemaFiles(dir)).toEqual([]);
    writeFileSync(path.join(dir, 'workflow-input.schema.json'), readFileSync(INPUT_SCHEMA, 'utf8').replace('"maxItems": 20', '"maxItems": 21'));
    expect(staleJsonSchemaFiles(dir)).toEqual(['workflow-input.schema.json']);
  });

  it('the config schema embeds the input schema for schedule and trigger inputs', () => {
    const config = readJson(CONFIG_SCHEMA) as { $defs: { WorkflowInput: unknown } };
    const { $schema: _s, $comment: _c, ...input } = readJson(INPUT_SCHEMA) as Record<string, unknown>;
    expect(config.$defs.WorkflowInput).toEqual(input);
  });
});

describe('every example and config file names its schema in "$schema" and passes it', () => {
  const files = [...jsonFilesUnder(path.join(root, 'examples')), 'webrun.config.json'].filter((f) => !NO_SCHEMA.includes(f));

  it('finds the examples', () => {
    expect(files).toEqual(expect.arrayContaining(['examples/shopping.json', 'examples/config/full.json', 'examples/config/monday-report.input.json', 'webrun.config.json']));
  });

  it.each(files)('%s', (file) => {
    const value = readJson(path.join(root, file)) as Record<string, unknown>;
    const isConfig = CONFIG_FILES.includes(file);
    expect(typeof value.$schema).toBe('string');
    expect(path.resolve(root, path.dirname(file), value.$schema as string)).toBe(isConfig ? CONFIG_SCHEMA : INPUT_SCHEMA);
    expect(errorsOf(isConfig ? validateConfig : validateInput, value)).toEqual([]);
    // and the runtime validators accept it too
    if (isConfig) expect(() => loadConfig({ path: file, cwd: root })).not.toThrow();
    else expect(() => validateWorkflowInput(value)).not.toThrow();
  });
});

describe('the JSON Schema catches in an editor the mistakes the validator refuses', () => {
  const task = { taskDetails: 'Open the page' };
  it.each([
    ['an unknown task field', { tasks: [{ ...task, timeout: 5 }] }],
    ['an unknown top-level field', { tasks: [task], variables: {} }],
    ['no tasks', { session: {} }],
    ['an empty task list', { tasks: [] }],
    ['21 tasks', { tasks: Array.from({ length: 21 }, () => task) }],
    ['maxDuration 0', { tasks: [{ ...task, maxDuration: 0 }] }],
    ['a fractional maxDuration', { tasks: [{ ...task, maxDuration: 1500.5 }] }],
    ['taskDetails of zero-width spaces', { tasks: [{ taskDetails: '\u200B\u200C\u200D\u2060\uFEFF' }] }],
    ['a URL in avoidDomains', { session: { avoidDomains: ['https://x.com'] }, tasks: [task] }],
    ['an unknown outputType', { tasks: [{ ...task, outputType: 'xml' }] }],
    ['an outputSchema with a bad type', { tasks: [{ ...task, outputType: 'structured_json', outputSchema: { type: 'float' } }] }],
    ['inline credentials', { tasks: [{ ...task, secrets: [{ match: 'x.com', fields: { password: 'p' } }] }] }],
  ])('input: %s', (_name, input) => {
    expect(() => validateWorkflowInput(input)).toThrow();
    expect(errorsOf(validateInput, input)).not.toEqual([]);
  });

  it.each([
    ['an unknown field', { stackNme: 'x' }],
    ['a log level', { logLevel: 'DEBUG' }],
    ['a retention', { logRetentionDays: 31 }],
    ['a schedule name', { schedules: [{ name: 'has space', expression: 'rate(1 day)', input: { tasks: [task] } }] }],
    ['a task in a schedule input', { schedules: [{ name: 'a', expression: 'rate(1 day)', input: { tasks: [{ ...task, maxDuration: 999_999 }] } }] }],
    ['an empty event pattern', { triggers: [{ name: 'a', eventPattern: {} }] }],
    ['an event pattern key', { triggers: [{ name: 'a', eventPattern: { detailType: ['x'] } }] }],
    ['a secret name ending like an ARN\'s random suffix', { apiKeySecretName: 'prod-webrun' }],
  ])('config: %s', (_name, config) => {
    expect(errorsOf(validateConfig, config)).not.toEqual([]);
  });

  it('property: a text field\'s length is counted alike, in code points, emoji and lone surrogates included (fixed seed)', () => {
    const char = fc.constantFrom('a', 'é', '中', '😀', '\u{10FFFF}', '\uD83D', '\uDE00');
    fc.assert(
      fc.property(fc.array(char, { minLength: 190, maxLength: 210 }), (chars) => {
        const input = { session: { profileId: `x${chars.join('')}` }, tasks: [task] };
        let accepted = true;
        try {
          validateWorkflowInput(input);
        } catch {
          accepted = false;
        }
        expect(errorsOf(validateInput, input).length === 0, JSON.stringify(input.session.profileId)).toBe(accepted);
      }),
      { seed: 4, numRuns: 300 },
    );
  });

  it('property: an outputSchema is accepted by the validator exactly when the editor accepts it (draft-07 subschemas, fixed seed)', () => {
    // Mostly valid, so that both answers are common: a few keywords per schema, now and then a wrong value.
    const junk = fc.constantFrom<unknown>(5, 'string', null, []);
    const { schema } = fc.letrec<{ schema: unknown; object: Record<string, unknown> }>((tie) => {
      const sub = tie('schema');
      const some = (keys: string[]) => fc.dictionary(fc.constantFrom(...keys), sub, { maxKeys: 2 });
      const list = (minLength: number) => fc.array(sub, { minLength, maxLength: 2 });
      const keyword = fc.oneof(
        fc.tuple(fc.constant('type'), fc.constantFrom<unknown>('string', 'object', ['array', 'null'], 'integer', 'float', [])),
        fc.tuple(fc.constant('properties'), some(['a', 'b'])),
        fc.tuple(fc.constant('patternProperties'), some(['^a', 'b$'])),
        fc.tuple(fc.constantFrom('definitions', 'dependencies'), some(['x', 'y'])),
        fc.tuple(fc.constant('dependencies'), fc.constantFrom<unknown>({ a: ['c'] }, { a: [1] })),
        fc.tuple(fc.constant('items'), fc.oneof(sub, list(0))),
        fc.tuple(fc.constantFrom('additionalProperties', 'additionalItems', 'contains', 'propertyNames', 'not', 'if', 'then', 'else'), sub),
        fc.tuple(fc.constantFrom('anyOf', 'allOf', 'oneOf'), fc.oneof({ arbitrary: list(1), weight: 4 }, { arbitrary: list(0), weight: 1 })),
        fc.tuple(fc.constant('required'), fc.constantFrom<unknown>(['a'], ['a'], [1])),
        fc.tuple(fc.constant('enum'), fc.constantFrom<unknown>([1, 'a'], [1, 'a'], 'a')),
      );
      return {
        schema: fc.oneof({ depthSize: 'small' }, { arbitrary: tie('object'), weight: 6 }, { arbitrary: fc.boolean(), weight: 3 }, { arbitrary: junk, weight: 1 }),
        object: fc.array(keyword, { maxLength: 3 }).map((pairs) => Object.fromEntries(pairs)),
      };
    });
    const asRoot = schema.filter((s) => typeof s === 'object' && s !== null && !Array.isArray(s));
    fc.assert(
      fc.property(asRoot, (outputSchema) => {
        const input = { tasks: [{ ...task, outputType: 'structured_json', outputSchema }] };
        let accepted = true;
        try {
          validateWorkflowInput(input);
        } catch {
          accepted = false;
        }
        expect(errorsOf(validateInput, input).length === 0, JSON.stringify(outputSchema)).toBe(accepted);
      }),
      { seed: 7, numRuns: 1000 },
    );
  });

  it('property: apiKeySecretName is accepted by the validator exactly when the editor accepts it (fixed seed)', () => {
    // Short names of a few characters, hyphens common: a name ending in "-" and six characters is refused by both.
    const name = fc.array(fc.constantFrom('a', 'Z', '7', '-', '/', '.', ' '), { minLength: 1, maxLength: 12 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(name, (apiKeySecretName) => {
        let accepted = true;
        try {
          parseConfig({ apiKeySecretName });
        } catch {
          accepted = false;
        }
        expect(errorsOf(validateConfig, { apiKeySecretName }).length === 0, JSON.stringify(apiKeySecretName)).toBe(accepted);
      }),
      { seed: 11, numRuns: 500 },
    );
  });

  it('accepts what the validator accepts, "$schema" included', () => {
    const inputs = [
      { tasks: [task] },
      { $schema: '../schema/workflow-input.schema.json', session: {}, tasks: [{ ...task, maxDuration: 1000, avoidDomains: ['*.ads.example.co.uk'], outputType: 'structured_csv', outputSchema: { type: ['object', 'null'], items: true } }] },
      { tasks: [{ taskDetails: '\u200BOpen the cart', secrets: [{ match: '*.shop.example.com', secret: 'webrun-sfn/shop' }] }] },
    ];
    for (const input of inputs) {
      expect(() => validateWorkflowInput(input)).not.toThrow();
      expect(errorsOf(validateInput, input)).toEqual([]);
    }
  });
});
