/** The workflows `npm start` loads without synthesizing are the ones the construct synthesizes now. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtDefinitions, staleDefinitions } from '../../bin/definitions';
import { CompletionModes } from '../../lambdas/shared/contract';
import { describeWorkflow } from '../../local/asl';
import { BUILT_DIR, builtDescription, builtWorkflow, localWorkflow } from '../../local/workflow';
import { Completion } from '../../lib/webrun-workflow';

describe('built workflows (local/built)', () => {
  // Synthesized once for the file: each is a synth of its own.
  const definitions = builtDefinitions();

  it('are what the construct synthesizes with default props, for each completion mode and the batch (run `npm run definitions` after changing it)', () => {
    expect(Object.keys(definitions).sort()).toEqual(['batch.json', 'poll.json', 'webhook.json']);
    expect(staleDefinitions(BUILT_DIR, definitions)).toEqual([]);
  });

  it('a changed definition is reported as stale', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-built-'));
    for (const [name, text] of Object.entries(definitions)) writeFileSync(path.join(dir, name), text);
    expect(staleDefinitions(dir, definitions)).toEqual([]);
    const poll = JSON.parse(readFileSync(path.join(dir, 'poll.json'), 'utf8'));
    poll.definition.States['Wait before polling'].Seconds = 1;
    writeFileSync(path.join(dir, 'poll.json'), JSON.stringify(poll));
    expect(staleDefinitions(dir, definitions)).toEqual(['poll.json']);
    const batch = path.join(dir, 'batch.json');
    writeFileSync(batch, readFileSync(batch, 'utf8').replace('"maxConcurrency": 5', '"maxConcurrency": 6'));
    expect(staleDefinitions(dir, definitions).sort()).toEqual(['batch.json', 'poll.json']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('pass aws-local-stepfunctions\' definition check as the runner executes them (`npm start` runs them without checking again)', () => {
    for (const mode of Object.values(CompletionModes)) expect(() => localWorkflow(builtDescription(mode), true), mode).not.toThrow();
    // The check is real: a state that names a missing next state is refused.
    const broken = builtDescription('poll');
    broken.definition.States['Wait before polling'].Next = 'Nowhere';
    expect(() => localWorkflow(broken, true)).toThrow(/invalid/);
  });

  it('load into the same workflow the runner would synthesize', () => {
    const built = builtWorkflow('webhook');
    const synthesized = describeWorkflow({ completion: Completion.WEBHOOK });
    expect(built.definition).toEqual(synthesized.definition);
    expect(built.taskHandlers).toEqual(synthesized.taskHandlers);
    expect(built.waitsForToken).toEqual(synthesized.waitsForToken);
    expect(built.waitsForToken).toEqual({ 'Send task': '$.loop.waitSeconds', 'Ask a person': '$.loop.question.timeoutSeconds' });
    expect(builtDescription('poll').settings).toEqual(JSON.parse(definitions['poll.json']).settings);
  });
});
