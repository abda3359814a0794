/** The workflows `npm start` loads without synthesizing are the ones the construct synthesizes now. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtDefinitions, staleDefinitions } from '../../bin/definitions';
import { describeWorkflow } from '../../local/asl';
import { BUILT_DIR, builtWorkflow } from '../../local/workflow';
import { Completion } from '../../lib/webrun-workflow';

describe('built workflows (local/built)', () => {
  it('are what the construct synthesizes with default props, for each completion mode (run `npm run definitions` after changing it)', () => {
    expect(staleDefinitions()).toEqual([]);
  });

  it('a changed definition is reported as stale', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-built-'));
    for (const [name, text] of Object.entries(builtDefinitions())) writeFileSync(path.join(dir, name), text);
    expect(staleDefinitions(dir)).toEqual([]);
    const poll = JSON.parse(readFileSync(path.join(dir, 'poll.json'), 'utf8'));
    poll.definition.States['Wait before polling'].Seconds = 1;
    writeFileSync(path.join(dir, 'poll.json'), JSON.stringify(poll));
    expect(staleDefinitions(dir)).toEqual(['poll.json']);
  });

  it('load into the same workflow the runner would synthesize', () => {
    const built = builtWorkflow('webhook');
    const synthesized = describeWorkflow({ completion: Completion.WEBHOOK });
    expect(built.definition).toEqual(synthesized.definition);
    expect(built.taskHandlers).toEqual(synthesized.taskHandlers);
    expect(built.waitsForToken).toEqual(synthesized.waitsForToken);
    expect(built.waitsForToken).toEqual({ 'Send task': '$.loop.waitSeconds', 'Ask a person': '$.loop.question.timeoutSeconds' });
    expect(JSON.parse(readFileSync(path.join(BUILT_DIR, 'poll.json'), 'utf8')).settings).toEqual(describeWorkflow().settings);
  });
});
