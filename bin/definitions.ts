#!/usr/bin/env node
/**
 * `npm run definitions`: writes local/built/<completion>.json, the workflow the construct synthesizes with default
 * props for each completion mode, as the local runner executes it, and local/built/batch.json, the batch state
 * machine the local batch runs (`npm start -- --batch`). `npm start` loads these instead of synthesizing
 * (no aws-cdk-lib, no synth: a local run starts in a fraction of the time). `-- --check` writes nothing and exits 1
 * when a committed file differs from what the construct synthesizes now (a test does the same).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CompletionModes, type CompletionMode } from '../lambdas/shared/contract';
import { describeWorkflow } from '../local/asl';
import { describeBatch } from '../local/batch-asl';
import { BUILT_BATCH_FILE } from '../local/batch-workflow';
import { BUILT_DIR } from '../local/workflow';
import { Completion } from '../lib/webrun-workflow';
import { staleFiles } from './generated-files';

const MODES: Record<CompletionMode, Completion> = { poll: Completion.POLL, webhook: Completion.WEBHOOK };

const text = (definition: unknown) => `${JSON.stringify(definition, null, 2)}\n`;

/** The files, by name in local/built/. */
export function builtDefinitions(): Record<string, string> {
  return {
    ...Object.fromEntries(Object.values(CompletionModes).map((mode) => [`${mode}.json`, text(describeWorkflow({ completion: MODES[mode] }))])),
    [path.basename(BUILT_BATCH_FILE)]: text(describeBatch()),
  };
}

/** The names of the committed files (in `dir`) that differ from `definitions`: by default, what the construct synthesizes now. */
export function staleDefinitions(dir = BUILT_DIR, definitions = builtDefinitions()): string[] {
  return staleFiles(definitions, dir);
}

if (require.main === module) {
  if (process.argv.includes('--check')) {
    const stale = staleDefinitions();
    if (stale.length > 0) {
      console.error(`stale: ${stale.map((n) => `local/built/${n}`).join(', ')}: run npm run definitions`);
      process.exitCode = 1;
    }
  } else {
    mkdirSync(BUILT_DIR, { recursive: true });
    for (const [name, text] of Object.entries(builtDefinitions())) {
      writeFileSync(path.join(BUILT_DIR, name), text);
      console.error(`wrote local/built/${name}`);
    }
  }
}
