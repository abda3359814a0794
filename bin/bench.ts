#!/usr/bin/env node
/**
 * `npm run bench [-- --json] [-- --quick]`: prints speed and cost figures, measured by running the synthesized
 * workflows locally against the emulator. Nothing here asserts: the figures are for people to read against the
 * targets (README "Cost").
 *
 * - Completion cost and detection latency, per pending time, for completion by webhook, a webhook whose doorbell
 *   is lost (polling fallback), polling (the default), the previous polling plan and a naive 2 s loop. Time runs
 *   scaled (every wait, pause and the API's ~50 s send-message hold alike) and is scaled back in the figures.
 *   Transitions, history events and invocations are exact counts; Lambda GB-seconds are each invocation's scaled-back
 *   wall time times its function's memory; latency is from the task's end (in the emulator) to the step that saw it.
 * - Local run speed: `npm start` of examples/shopping.json next to a minimal script making the same API calls.
 * - Memory: the bundled poll Lambda's resident set after loading, and while handling 200 KiB results.
 * - Package: the packed construct installed into a plain JavaScript CDK app, and how long that app takes to synth.
 * - Batches (bin/bench-batch.ts): 1,000 items at concurrency 8, and the same under a session limit of 4.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib/core';
import { buildSync } from 'esbuild';
import { StateNames } from '../lambdas/shared/contract';
import type { HandlerName } from '../lambdas/shared/handlers';
import { synthesizeLocalWorkflow, type LocalWorkflow } from '../local/asl';
import { startEmulator, type Emulator } from '../local/emulator';
import type { StateEvent } from '../local/progress';
import { runLocalWorkflow } from '../local/runner';
import { Completion } from '../lib/webrun-workflow';
import { benchBatch } from './bench-batch';
import { installConsumerApp, synthConsumerApp } from './consumer-app';
import { nodeArgsOf } from './npm-scripts';

const PRICE = { perTransition: 0.025 / 1000, perGbSecond: 0.0000133334, perRequest: 0.2 / 1e6 };
/** The real API holds send-message up to ~50 s and answers a task that finished by then. */
const SEND_HOLD_MS = 50_000;
const RECEIVER_MEMORY_MB = 256;
const ROOT = path.join(__dirname, '..');
const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const say = (line = '') => {
  if (!json) console.log(line);
};

interface Plan {
  label: string;
  workflow: LocalWorkflow;
  /** Memory every function gets instead of its own (the previous plan ran all at 256 MB). */
  memoryMb?: number;
  dropDoorbell?: boolean;
}

interface Cell {
  plan: string;
  pendingSeconds: number;
  transitions: number;
  historyEvents: number;
  lambdaInvocations: number;
  gbSeconds: number;
  dollarsPer1000Tasks: number;
  medianAddedLatencySeconds: number;
}

/** Runs one single-task workflow whose task ends `pendingSeconds` after it was sent; returns its figures. */
async function measure(emulator: Emulator, plan: Plan, pendingSeconds: number, scale: number): Promise<Omit<Cell, 'plan' | 'pendingSeconds' | 'medianAddedLatencySeconds' | 'dollarsPer1000Tasks'> & { addedLatencySeconds: number }> {
  emulator.reset();
  emulator.enqueueTasks({ outcome: 'completed', pendingPolls: 0, pendingMs: Math.round(pendingSeconds * 1000 * scale), ...(plan.dropDoorbell ? { doorbell: { drop: true } } : {}) });
  const events: StateEvent[] = [];
  let gbSeconds = 0;
  const memory = (handler: HandlerName | 'receiveDoorbell') => plan.memoryMb ?? (handler === 'receiveDoorbell' ? RECEIVER_MEMORY_MB : plan.workflow.memoryMb[handler]);
  const summary = await runLocalWorkflow({
    input: { tasks: [{ taskDetails: 'Benchmark task' }] },
    baseUrl: emulator.url,
    apiKey: 'bench-key-0123456789',
    waitScale: scale,
    workflow: plan.workflow,
    onStateEvent: (e) => events.push(e),
    onInvocation: (handler, ms) => {
      gbSeconds += (ms / scale / 1000) * (memory(handler) / 1024);
    },
  });
  if (summary.status !== 'SUCCEEDED') throw new Error(`${plan.label} at ${pendingSeconds} s: ${summary.error?.name} ${summary.error?.cause}`);
  const task = emulator.ledger().sessions[0].tasks[0];
  const endedAt = task.sentAt + pendingSeconds * 1000 * scale;
  // The step that saw the task end: the first exit (or resume) whose loop moved past it.
  const seen = events.find((e) => e.type === 'exited' && [StateNames.send, StateNames.poll, StateNames.fallBack].includes(e.state as never) && (e.output as { loop?: { index?: number } })?.loop?.index === 1);
  const addedLatencySeconds = seen ? Math.max(0, (seen.at - endedAt) / scale / 1000) : NaN;
  return { transitions: summary.stats.stateTransitions, historyEvents: summary.stats.historyEvents, lambdaInvocations: summary.stats.lambdaInvocations, gbSeconds, addedLatencySeconds };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dollars = (c: { transitions: number; gbSeconds: number; lambdaInvocations: number }) => c.transitions * PRICE.perTransition + c.gbSeconds * PRICE.perGbSecond + c.lambdaInvocations * PRICE.perRequest;

async function completionCosts(): Promise<Cell[]> {
  const scale = quick ? 0.02 : 0.04;
  const samples = quick ? 1 : 3;
  const emulator = await startEmulator({ apiKey: 'bench-key-0123456789', sendHoldMs: Math.round(SEND_HOLD_MS * scale), webhookPendingMs: 0 });
  const webhook = synthesizeLocalWorkflow({ completion: Completion.WEBHOOK });
  const plans: Plan[] = [
    { label: 'webhook', workflow: webhook },
    { label: 'webhook, doorbell lost', workflow: webhook, dropDoorbell: true },
    { label: 'poll (default)', workflow: synthesizeLocalWorkflow() },
    { label: 'poll (before: Wait 5 s + hold 20 s, 256 MB)', workflow: synthesizeLocalWorkflow({ pollInterval: Duration.seconds(5), pollHold: Duration.seconds(20) }), memoryMb: 256 },
    { label: 'naive (Wait 2 s, one GET, 256 MB)', workflow: synthesizeLocalWorkflow({ pollInterval: Duration.seconds(2), pollHold: Duration.seconds(0) }), memoryMb: 256 },
  ];
  const cells: Cell[] = [];
  say(`Cost of one task pending P seconds (one-task workflow, start and terminate included; Step Functions Standard + Lambda arm64, us-east-1;`);
  say(`time scaled x${scale}, send-message holding up to ${SEND_HOLD_MS / 1000} s as the API does; latency: median of ${samples})`);
  say('  plan                                          P    transitions  events  invocations  GB-s     $ / 1,000 tasks  added latency');
  for (const plan of plans) {
    for (const pendingSeconds of [0, 12, 60, 300]) {
      const runs = [];
      for (let i = 0; i < samples; i++) runs.push(await measure(emulator, plan, pendingSeconds, scale));
      const last = runs[runs.length - 1];
      const cell: Cell = {
        plan: plan.label,
        pendingSeconds,
        transitions: last.transitions,
        historyEvents: last.historyEvents,
        lambdaInvocations: last.lambdaInvocations,
        gbSeconds: median(runs.map((r) => r.gbSeconds)),
        dollarsPer1000Tasks: 0,
        medianAddedLatencySeconds: median(runs.map((r) => r.addedLatencySeconds)),
      };
      cell.dollarsPer1000Tasks = dollars(cell) * 1000;
      cells.push(cell);
      say(`  ${plan.label.padEnd(44)}${String(pendingSeconds).padStart(4)} ${String(cell.transitions).padStart(10)} ${String(cell.historyEvents).padStart(8)} ${String(cell.lambdaInvocations).padStart(11)}  ${cell.gbSeconds.toFixed(1).padStart(6)}   ${('$' + cell.dollarsPer1000Tasks.toFixed(3)).padStart(10)}      ${cell.medianAddedLatencySeconds.toFixed(2)} s`);
    }
  }
  await emulator.close();
  return cells;
}

/** `npm start` of the shopping example in a child process, next to a minimal script making the same API calls. */
function localRunSpeed(): { npmStartMs: number; minimalScriptMs: number; ratio: number; calls: number } {
  const runs = quick ? 1 : 3;
  const time = (cmd: string, args: string[]) => {
    const walls: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = Date.now();
      const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, WEBRUN_API_KEY: '', WEBRUN_BASE_URL: '' } });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
      walls.push(Date.now() - t);
    }
    return median(walls);
  };
  // npm start's own node command (without npm's start-up); the minimal script gets the same node flags.
  const start = nodeArgsOf('start');
  const flags = start.slice(0, -1);
  const npmStartMs = time(process.execPath, [...start, 'examples/shopping.json', '--wait-scale', '0', '--json']);
  // The same calls a run makes (start, then per task: send, poll GETs; terminate) against the same built-in emulator.
  const script = `
    const { startEmulator } = require(${JSON.stringify(path.join(ROOT, 'local/emulator'))});
    (async () => {
      const em = await startEmulator({ apiKey: 'k-minimal-0123456789' });
      const call = (m, p, b) => fetch(em.url + p, { method: m, headers: { authorization: 'Bearer k-minimal-0123456789', 'content-type': 'application/json' }, body: b && JSON.stringify(b) }).then((r) => r.json());
      const { sessionId } = await call('POST', '/start/start-session', { mode: 'default', initialTask: { taskDetails: '' } });
      for (const t of ${JSON.stringify((JSON.parse(readFileSync(path.join(ROOT, 'examples/shopping.json'), 'utf8')) as { tasks: unknown[] }).tasks)}) {
        let a = await call('POST', '/start/send-message', { sessionId, message: { actionType: 'newTask', newState: 'start', ...t } });
        while (a.pending || a.status === 'pending' || a.status === 'active') a = await call('GET', '/task/' + sessionId + '/' + a.taskId);
      }
      await call('POST', '/start/send-message', { sessionId, message: { actionType: 'state', newState: 'terminate' } });
      await em.close();
    })();`;
  const minimalScriptMs = time(process.execPath, [...flags, '-e', script]);
  return { npmStartMs, minimalScriptMs, ratio: npmStartMs / minimalScriptMs, calls: 14 };
}

/** The bundled poll Lambda's resident set, loaded in a fresh process with the AWS SDK beside it, as in Lambda. */
function pollLambdaMemory(): { afterLoadMb: number; peakWith200KiBMb: number } {
  const dir = mkdtempSync(path.join(tmpdir(), 'webrun-bench-'));
  try {
    buildSync({ entryPoints: [path.join(ROOT, 'lambdas/index.ts')], bundle: true, platform: 'node', target: 'node22', minify: true, external: ['@aws-sdk/*'], outfile: path.join(dir, 'poll.js'), logLevel: 'silent' });
    const probe = `
      const m = require(${JSON.stringify(path.join(dir, 'poll.js'))});
      const after = process.memoryUsage().rss;
      const big = { type: 'task_completed', data: { message: 'x'.repeat(200 * 1024) } };
      let peak = after;
      for (let i = 0; i < 5; i++) { const text = JSON.stringify(big); JSON.parse(text); peak = Math.max(peak, process.memoryUsage().rss); }
      console.log(JSON.stringify({ afterLoadMb: after / 1048576, peakWith200KiBMb: peak / 1048576, handler: typeof m.pollTask }));`;
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') } });
    const out = JSON.parse(r.stdout) as { afterLoadMb: number; peakWith200KiBMb: number };
    return { afterLoadMb: Math.round(out.afterLoadMb), peakWith200KiBMb: Math.round(out.peakWith200KiBMb) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The packed construct in a plain JavaScript CDK app (bin/consumer-app.ts): install once, then time its synth. */
function consumerSynthSpeed(): { installMs: number; synthMs: number; synthWithValidationMs: number; samples: number; tarballBytes: number } {
  const started = Date.now();
  const app = installConsumerApp();
  const installMs = Date.now() - started;
  try {
    const samples = quick ? 1 : 3;
    const time = (validation: boolean) => median(Array.from({ length: samples }, () => {
      const synth = synthConsumerApp(app, { validation });
      if (synth.status !== 0) throw new Error(`the consumer app's synth failed: ${synth.stderr}`);
      return synth.wallMs;
    }));
    return { installMs, synthMs: time(false), synthWithValidationMs: time(true), samples, tarballBytes: app.packed.size };
  } finally {
    rmSync(app.tmp, { recursive: true, force: true });
  }
}

async function main() {
  const costs = await completionCosts();
  const memory = pollLambdaMemory();
  say(`\nMemory: the bundled poll Lambda holds ${memory.afterLoadMb} MB after loading (Node ${process.versions.node}), ${memory.peakWith200KiBMb} MB handling 200 KiB results; send and poll run with 160 MB.`);
  const speed = localRunSpeed();
  say(`\nLocal run: npm start of examples/shopping.json (--wait-scale 0): ${speed.npmStartMs} ms; a minimal script making the same ${speed.calls} API calls: ${speed.minimalScriptMs} ms; ratio ${speed.ratio.toFixed(2)}x (both as child processes, median of ${quick ? 1 : 3}).`);
  const consumer = consumerSynthSpeed();
  say(`\nPackage: npm pack and an offline install into a plain JavaScript CDK app: ${consumer.installMs} ms; that app's synth of the workflow (node app.js, no tsx or esbuild): ${consumer.synthMs} ms, ${consumer.synthWithValidationMs} ms with aws-cdk-lib's own template validation (median of ${consumer.samples}; target: under 10 s); tarball ${consumer.tarballBytes} bytes.`);
  const batches = await benchBatch((text) => say(text.replace(/\n$/, '')));
  if (json) console.log(JSON.stringify({ completion: costs, memory, localRun: speed, consumer, batches }, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
