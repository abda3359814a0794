/**
 * The batch definition the local batch runs is the one that deploys, but for where items come from: the built copy
 * is what the construct synthesizes, and the local one differs from it by each ItemReader replaced with ItemsPath.
 */
import { describe, expect, it } from 'vitest';
import { BATCH_LIMITS, BatchStateNames, ITEM_FORMATS } from '../../lambdas/shared/batch-contract';
import { describeBatch } from '../../local/batch-asl';
import { templateProblem } from '../../local/batch-items';
import { builtBatchDefinition, LOCAL_ITEMS_PATH, localBatchDefinition } from '../../local/batch-workflow';
import { executorFor } from '../../local/workflow';

/** Every leaf path where two JSON values differ: `-path` only in `a`, `+path` only in `b`, `~path` changed. */
function differences(a: unknown, b: unknown, at = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) return JSON.stringify(a) === JSON.stringify(b) ? [] : [`~${at}`];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => {
    const p = `${at}/${k}`;
    if (!(k in b)) return [`-${p}`];
    if (!(k in a)) return [`+${p}`];
    return differences(a[k], b[k], p);
  });
}

describe('the batch definition', () => {
  it('local/built/batch.json, as the local batch loads it, is what the construct synthesizes with default props (test/local/built-workflows.test.ts checks the file)', () => {
    expect(builtBatchDefinition()).toEqual(describeBatch());
  });

  it('runs locally with one difference from what deploys: where items come from (each ItemReader becomes ItemsPath)', () => {
    const deployed = builtBatchDefinition();
    const local = localBatchDefinition(deployed);
    const maps = ITEM_FORMATS.map((f) => BatchStateNames.runItems[f]);
    expect(differences(deployed, local).sort()).toEqual(maps.flatMap((m) => [`+/States/${m}/ItemsPath`, `-/States/${m}/ItemReader`]).sort());
    for (const m of maps) expect(local.States[m].ItemsPath).toBe(LOCAL_ITEMS_PATH);
    // The deployed definition is left as it was.
    expect(deployed).toEqual(builtBatchDefinition());
  });

  it('passes aws-local-stepfunctions\' definition check as it runs locally (the local batch runs it without checking it again)', () => {
    expect(() => executorFor(localBatchDefinition(builtBatchDefinition()), true)).not.toThrow();
    // The check is real: the same definition with a state that names a missing next state is refused.
    const broken = localBatchDefinition(builtBatchDefinition());
    broken.States[BatchStateNames.prepare] = { ...broken.States[BatchStateNames.prepare], Next: 'Nowhere' };
    expect(() => executorFor(broken, true)).toThrow(/invalid/);
  });

  it('the deployed definition as it is cannot run locally: aws-local-stepfunctions has no ItemReader', async () => {
    // Run unchecked: what fails is the run (the definition check is the test above's).
    const machine = executorFor(builtBatchDefinition(), false);
    const input = { items: { bucket: 'b', key: 'batches/x/items.json', format: 'json' }, template: { tasks: [{ taskDetails: 'x' }] } };
    await expect(machine.run(input as never, { context: { Execution: { Id: 'arn:aws:states:local:000000000000:execution:b:x', Name: 'x', RedriveCount: 0 } } }).result).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/must be an array/) },
    });
  });

  it('holds the largest template batch start accepts (BATCH_LIMITS.maxTemplateBytes) within 256 KiB, and holds it twice', async () => {
    // The deployed definition's first states, up to and including "Prepare batch" (then the state ends).
    const deployed = builtBatchDefinition();
    const prepare = { ...deployed.States[BatchStateNames.prepare] };
    delete prepare.Next;
    const head = { StartAt: deployed.StartAt, States: { [BatchStateNames.defaults]: deployed.States[BatchStateNames.defaults], [BatchStateNames.prepare]: { ...prepare, End: true } } };
    expect(deployed.StartAt).toBe(BatchStateNames.defaults);
    const templateOf = (bytes: number) => {
      const template = { tasks: [{ taskDetails: '' }], vars: { shop: 'https://shop.example.com' } };
      template.tasks[0].taskDetails = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(template)));
      return template;
    };
    const template = templateOf(BATCH_LIMITS.maxTemplateBytes);
    expect(Buffer.byteLength(JSON.stringify(template))).toBe(BATCH_LIMITS.maxTemplateBytes);
    expect(templateProblem(template)).toBeUndefined();
    expect(templateProblem(templateOf(BATCH_LIMITS.maxTemplateBytes + 1))).toMatch(/at most 129024 \(the batch state machine holds it twice/);

    // As `batch start` starts it: the longest batch name, every optional field.
    const input = { items: { bucket: 'webrun-sfn-results-0123456789abcdef', key: `batches/${'n'.repeat(80)}/items.json`, format: 'json' }, template, maxConcurrency: 10_000, toleratedFailurePercentage: 100 };
    const machine = executorFor(head, false);
    const output = await machine.run(input as never, { context: { Execution: { Id: `arn:aws:states:us-east-1:123456789012:execution:WebrunSfnBatch:${'n'.repeat(80)}`, Name: 'n', RedriveCount: 0 } } }).result;
    const size = Buffer.byteLength(JSON.stringify(output));
    expect(size).toBeGreaterThan(2 * BATCH_LIMITS.maxTemplateBytes);
    expect(size).toBeLessThanOrEqual(256 * 1024);
  });
});
