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

function print(f: Figures): void {
  const { summary: s, ledger: l } = f;
  const refused = l.requests.filter((r) => r.endpoint === 'start' && r.status === 429).length;
  const rows: Array<[string, string]> = [
    ['status', `${s.status}: ${s.items.succeeded}/${s.items.total} succeeded, ${s.items.failed} failed`],
    ['wall time', `${(s.stats.wallMs / 1000).toFixed(1)} s (${(s.items.total / (s.stats.wallMs / 1000)).toFixed(0)} items/s)`],
    ['sessions', `created ${l.created}, terminated ${l.terminated}, open at the end ${l.open}, most open at once (maxOpen) ${l.maxOpen}`],
    ['start-session refused (429)', String(refused)],
    ['state transitions', `${s.stats.stateTransitions} (${(s.stats.stateTransitions / s.items.total).toFixed(1)} per item, batch and child together)`],
    ['Lambda invocations', `${s.stats.lambdaInvocations} (${(s.stats.lambdaInvocations / s.items.total).toFixed(1)} per item)`],
  ];
  process.stdout.write(`\n${f.label}\n${rows.map(([k, v]) => `  ${k.padEnd(28)} ${v}`).join('\n')}\n`);
}

/** Runs the batch benchmarks and prints their figures. */
export async function benchBatch(): Promise<void> {
  process.stdout.write('\nLocal batches against the built-in emulator (instantly finishing tasks, 2-core machine figures vary)\n');
  const workflow = builtWorkflow('poll');
  print(await once('1,000 items, concurrency 8', 1_000, 8, undefined, 0, workflow));
  // Waits scaled to a thousandth and a half (a retry interval of 10 s becomes 20 ms): refused starts wait for a session.
  print(await once('1,000 items, concurrency 8, emulator maxSessions 4 (SESSION_LIMIT_REACHED retried)', 1_000, 8, 4, 0.002, workflow));
}

if (require.main === module) {
  benchBatch().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
