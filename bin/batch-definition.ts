#!/usr/bin/env node
/**
 * `npx tsx bin/batch-definition.ts`: writes local/built/batch.json, the batch state machine the construct
 * synthesizes with default props, which the local batch (`npm start -- --batch`) runs without synthesizing.
 * `--check` writes nothing and exits 1 when the committed file differs (test/local/batch-definition.test.ts does the same).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describeBatch } from '../local/batch-asl';
import { BUILT_BATCH_FILE } from '../local/batch-workflow';

/** The file's text as the construct synthesizes it now. */
export function builtBatchText(): string {
  return `${JSON.stringify(describeBatch(), null, 2)}\n`;
}

/** Whether `file` differs from what the construct synthesizes now. */
export function batchDefinitionIsStale(file = BUILT_BATCH_FILE): boolean {
  try {
    return readFileSync(file, 'utf8') !== builtBatchText();
  } catch {
    return true;
  }
}

if (require.main === module) {
  if (process.argv.includes('--check')) {
    if (batchDefinitionIsStale()) {
      console.error(`stale: ${path.relative(process.cwd(), BUILT_BATCH_FILE)}: run npx tsx bin/batch-definition.ts`);
      process.exitCode = 1;
    }
  } else {
    mkdirSync(path.dirname(BUILT_BATCH_FILE), { recursive: true });
    writeFileSync(BUILT_BATCH_FILE, builtBatchText());
    console.error(`wrote ${path.relative(process.cwd(), BUILT_BATCH_FILE)}`);
  }
}
