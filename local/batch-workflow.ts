/**
 * The batch definition as the local batch runs it. aws-local-stepfunctions has no ItemReader (it cannot read S3),
 * so the one change from what deploys is where items come from: each Distributed Map's `ItemReader` is replaced
 * by `ItemsPath: "$.batch.items.values"`, and the local batch puts the items there, in the input, beside the
 * format that picks the map. Every other field is the deployed one (test/local/batch-definition.test.ts).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { BUILT_DIR, type AslState } from './workflow';

/** The batch state machine's definition (Map states hold their ItemProcessor). */
export type BatchDefinition = Record<string, unknown> & { StartAt: string; States: Record<string, AslState> };

/** Where the local batch puts the items: the batch input's `items.values`, after "Prepare batch" moved it under `batch`. */
export const LOCAL_ITEMS_PATH = '$.batch.items.values';

/** Where `npm run definitions` (bin/definitions.ts) writes the batch definition the construct synthesizes with default props. */
export const BUILT_BATCH_FILE = path.join(BUILT_DIR, 'batch.json');

/** The deployed batch definition, as built (a test keeps it equal to what the construct synthesizes). */
export function builtBatchDefinition(): BatchDefinition {
  return JSON.parse(readFileSync(BUILT_BATCH_FILE, 'utf8')) as BatchDefinition;
}

/** The deployed definition with each ItemReader replaced by `ItemsPath` (a copy; the argument is unchanged). */
export function localBatchDefinition(deployed: BatchDefinition): BatchDefinition {
  const local = structuredClone(deployed);
  for (const state of Object.values(local.States)) {
    if (state.Type !== 'Map' || state.ItemReader === undefined) continue;
    delete state.ItemReader;
    state.ItemsPath = LOCAL_ITEMS_PATH;
  }
  return local;
}
