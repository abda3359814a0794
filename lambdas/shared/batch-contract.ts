/**
 * The batch contract every layer shares: the batch state machine's state names, its input, the item formats, the
 * limits and where items and results live in the result bucket. Like ./contract.ts it imports nothing, so lib/
 * (the construct), local/ (the local batch) and cli/ can all depend on it.
 */

/** How a batch's items are written: a JSON array, JSON Lines (one object a line), or CSV with a header row. */
export const ITEM_FORMATS = ['json', 'jsonl', 'csv'] as const;
export type ItemFormat = (typeof ITEM_FORMATS)[number];

/** State names of the batch state machine (the local batch overrides the child-execution states by name). */
export const BatchStateNames = {
  /** Adds the defaults (concurrency, tolerated failures, empty template vars) beside the input. */
  defaults: 'Apply batch defaults',
  /** Merges the input over the defaults and names the batch (the hash its children's names start with). */
  prepare: 'Prepare batch',
  /** Picks the Distributed Map whose ItemReader reads the items' format. */
  format: 'Which item format?',
  unknownFormat: 'Unknown item format',
  /** The Distributed Map of each format, and the Task state in it that runs one item as a child execution. */
  runItems: { json: 'Run items (JSON)', jsonl: 'Run items (JSON Lines)', csv: 'Run items (CSV)' },
  runItem: { json: 'Run item (JSON)', jsonl: 'Run item (JSON Lines)', csv: 'Run item (CSV)' },
  /** Each Distributed Map's label, unique in the state machine: its map runs' children are `<state machine>/<label>:<id>`. */
  mapLabels: { json: 'Items-json', jsonl: 'Items-jsonl', csv: 'Items-csv' },
} as const satisfies Record<string, string | Record<ItemFormat, string>>;

/** The limits of one batch. */
export const BATCH_LIMITS = {
  /** Items per batch. */
  maxItems: 10_000,
  /** Child executions at once: Step Functions' own ceiling for a Distributed Map. */
  maxConcurrency: 10_000,
  /** Default of config `batch.maxConcurrency`: the webrun session limit is not documented, so it is the user's to raise. */
  defaultMaxConcurrency: 5,
  /** Default of config `batch.toleratedFailurePercentage`: any failed item fails the batch. */
  defaultToleratedFailurePercentage: 0,
  /**
   * The largest template (JSON, UTF-8 bytes): "Prepare batch" holds it twice in one state (inside the merged batch
   * input and as the items' template), and a state holds at most 256 KiB; 4 KiB are left for the rest of that state.
   */
  maxTemplateBytes: (256 * 1024 - 4 * 1024) / 2,
} as const;

/** Where `webrun-sfn batch start` uploads items, in the result bucket: the batch state machine may read only these. */
export const BATCH_ITEMS_PREFIX = 'batches/';
/** Where the Distributed Map's ResultWriter writes (`<prefix>/<map run id>/manifest.json` and the result files). */
export const BATCH_RESULTS_PREFIX = 'batch-results';

/** The error a batch fails with once more items failed than it tolerates (Step Functions' own name). */
export const EXCEEDED_TOLERATED_FAILURES = 'States.ExceedToleratedFailureThreshold';

/** The execution input of the deployed batch state machine. */
export interface BatchInput {
  /** The items file in S3 (the result bucket, under `batches/`). */
  items: { bucket: string; key: string; format: ItemFormat };
  /** A workflow input; each item's fields are merged over its `vars` (an item's value wins). */
  template: Record<string, unknown>;
  /** At most this many child executions at once. @default config batch.maxConcurrency */
  maxConcurrency?: number;
  /** The batch fails once more than this share of its items failed (0-100). @default config batch.toleratedFailurePercentage */
  toleratedFailurePercentage?: number;
}

/** The local batch's input: the same, with the items themselves where the deployed batch names a file. */
export interface LocalBatchInput extends Omit<BatchInput, 'items'> {
  items: { format: ItemFormat; values: Array<Record<string, unknown>> };
}

/**
 * What the map gives each child (its ItemSelector): the template, the item's merged vars, the item as read, its
 * index and the batch's id. The ResultWriter keeps it as each item's `Input`, which `batch results` reads back.
 */
export interface BatchChildInput {
  template: Record<string, unknown>;
  run: { vars: Record<string, unknown> };
  item: Record<string, unknown>;
  index: number;
  batchId: string;
}

/**
 * Whether a batch with `failed` of `total` items failed is still within `toleratedFailurePercentage`, as Step
 * Functions decides it for a Map Run: it fails once the failed share exceeds the tolerated one.
 */
export function withinTolerance(failed: number, total: number, toleratedFailurePercentage: number): boolean {
  return failed * 100 <= toleratedFailurePercentage * total;
}
