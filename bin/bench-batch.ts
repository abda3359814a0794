#!/usr/bin/env node
/**
 * Batch figures (`benchBatch()`, for `npm run bench`; or `npx tsx bin/bench-batch.ts`): the local batch against the
 * built-in emulator with instantly finishing tasks.
 *   1. 1,000 items at concurrency 8: wall time, sessions created / terminated, the most open at once, transitions.
 *   2. the same with the emulator's session limit at 4 (maxSessions): every item must still succeed, never more
 *      than 4 open, SESSION_LIMIT_REACHED retried (by "Start session"'s SESSION_LIMIT_RETRY).
 * Figures only: nothing here is asserted on time (the tests assert behaviour, with fewer items).
 */
import { runLocalBatch, type LocalBatchSummary } from '../local/batch';
import { parseItems } from '../local/batch-items';
import { startEmulator, type Emulator } from '../local/emulator';
import { builtWorkflow, type LocalWorkflow } from '../local/workflow';

const API_KEY = 'bench-batch-key-31c0a7';
const TEMPLATE = { session: { startingPoint: 'https://shop.example.com/p/{{sku}}' }, tasks: [{ taskDetails: 'Read the price of {{sku}}' }] };

interface Figures {
  label: string;
  summary: LocalBatchSummary;
  ledger: ReturnType<Emulator['ledger']>;
}

async function once(label: string, items: number, concurrency: number, maxSessions: number | undefined, waitScale: number, workflow: LocalWorkflow): Promise<Figures> {
  const emulator = await startEmulator({ apiKey: API_KEY, pendingPolls: 0, maxSessions });
  try {
    const csv = `sku\n${Array.from({ length: items }, (_, i) => `SKU-${i}`).join('\n')}\n`;
    const summary = await runLocalBatch({ template: TEMPLATE, items: parseItems(csv, 'csv', 'bench.csv'), format: 'csv', concurrency, baseUrl: emulator.url, apiKey: API_KEY, waitScale, workflow });
    return { label, summary, ledger: emulator.ledger() };
  } finally {
    await emulator.close();
  }
}

/** The figures of one batch, as printed and as `npm run bench -- --json` reports them. */
export interface BatchFigures {
  label: string;
  status: string;
  items: number;
  succeeded: number;
  wallMs: number;
  sessionsCreated: number;
  sessionsTerminated: number;
  maxOpen: number;
  refusedStarts: number;
  transitionsPerItem: number;
  invocationsPerItem: number;
}

function figures(f: Figures): BatchFigures {
  const { summary: s, ledger: l } = f;
  return {
    label: f.label,
    status: s.status,
    items: s.items.total,
    succeeded: s.items.succeeded,
    wallMs: s.stats.wallMs,
    sessionsCreated: l.created,
    sessionsTerminated: l.terminated,
    maxOpen: l.maxOpen,
    refusedStarts: l.requests.filter((r) => r.endpoint === 'start' && r.status === 429).length,
    transitionsPerItem: s.stats.stateTransitions / s.items.total,
    invocationsPerItem: s.stats.lambdaInvocations / s.items.total,
  };
}

function describe(b: BatchFigures): string {
  const rows: Array<[string, string]> = [
    ['status', `${b.status}: ${b.succeeded}/${b.items} succeeded, ${b.items - b.succeeded} not`],
    ['wall time', `${(b.wallMs / 1000).toFixed(1)} s (${(b.items / (b.wallMs / 1000)).toFixed(0)} items/s)`],
    ['sessions', `created ${b.sessionsCreated}, terminated ${b.sessionsTerminated}, most open at once (maxOpen) ${b.maxOpen}`],
    ['start-session refused (429)', String(b.refusedStarts)],
    ['state transitions', `${b.transitionsPerItem.toFixed(1)} per item, batch and child together`],
    ['Lambda invocations', `${b.invocationsPerItem.toFixed(1)} per item`],
  ];
  return `\n${b.label}\n${rows.map(([k, v]) => `  ${k.padEnd(28)} ${v}`).join('\n')}\n`;
}

/** Runs the batch benchmarks, writes their figures with `write` and returns them. */
export async function benchBatch(write: (text: string) => void = (t) => process.stdout.write(t)): Promise<BatchFigures[]> {
  write('\nLocal batches against the built-in emulator (instantly finishing tasks; figures vary with the machine\'s load)\n');
  const workflow = builtWorkflow('poll');
  const out: BatchFigures[] = [];
  for (const [label, maxSessions, waitScale] of [
    ['1,000 items, concurrency 8', undefined, 0],
    // Waits scaled to a thousandth and a half (a retry interval of 10 s becomes 20 ms): refused starts wait for a session.
    ['1,000 items, concurrency 8, emulator maxSessions 4 (SESSION_LIMIT_REACHED retried)', 4, 0.002],
  ] as const) {
    const b = figures(await once(label, 1_000, 8, maxSessions, waitScale, workflow));
    write(describe(b));
    out.push(b);
  }
  return out;
}

if (require.main === module) {
  benchBatch().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
