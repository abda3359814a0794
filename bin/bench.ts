#!/usr/bin/env node
/**
 * `npm run bench`: prints speed and cost figures. Transitions and Lambda invocations are measured by running the
 * synthesized workflow locally against the emulator; dollars apply the DESIGN.md cost model to those counts.
 * Nothing here asserts: the figures are for people to read against the targets.
 */
import { Duration } from 'aws-cdk-lib';
import { getsPerPoll } from '../lambdas/shared/handlers';
import { synthesizeLocalWorkflow, type LocalWorkflow } from '../local/asl';
import { startEmulator } from '../local/emulator';
import { runLocalWorkflow } from '../local/runner';

const PRICE = { perTransition: 0.025 / 1000, perGbSecond: 0.0000133334, perRequest: 0.2 / 1e6 };
const LAMBDA_GB = 0.25;

async function main() {
  const emulator = await startEmulator({ apiKey: 'bench' });
  const run = (workflow: LocalWorkflow, input: unknown) => runLocalWorkflow({ input, baseUrl: emulator.url, apiKey: 'bench', waitScale: 0, workflow });

  const t0 = Date.now();
  const deployed = synthesizeLocalWorkflow();
  const synthMs = Date.now() - t0;
  const naive = synthesizeLocalWorkflow({ pollInterval: Duration.seconds(2), pollHold: Duration.seconds(0) });

  console.log('Local execution speed (wait scale 0, loopback emulator)');
  console.log(`  synthesize the state machine in-process: ${synthMs} ms`);
  const threeTasks = { tasks: [{ taskDetails: 'Log in' }, { taskDetails: 'Search' }, { taskDetails: 'Add to cart' }] };
  const walls: number[] = [];
  let last;
  for (let i = 0; i < 10; i++) {
    last = await run(deployed, threeTasks);
    walls.push(last.stats.wallMs);
  }
  walls.sort((a, b) => a - b);
  console.log(`  3-task workflow, 2 pending polls per task: median ${walls[5]} ms, max ${walls[9]} ms over 10 runs (${last!.stats.stateTransitions} transitions, ${last!.stats.lambdaInvocations} Lambda invocations)`);
  emulator.enqueueTasks({ outcome: 'stuck' });
  const stuck = await run(deployed, { tasks: [{ taskDetails: 'Never ends' }] });
  console.log(`  stuck task to ${stuck.error?.name}: ${stuck.stats.wallMs} ms (${stuck.stats.stateTransitions} transitions)`);

  console.log('\nCost of one task pending for P seconds (Step Functions Standard + Lambda arm64 256 MB, us-east-1)');
  console.log('  plan                            P      transitions  SFN $     Lambda $  total $   history events (est.)');
  for (const [label, workflow] of [['default (Wait 5 s + hold 20 s)', deployed], ['naive (Wait 2 s, 1 GET)', naive]] as const) {
    const plan = workflow.settings.pollPlan;
    const getEverySeconds = plan.holdSeconds > 0 ? plan.everySeconds : plan.intervalSeconds;
    for (const pendingSeconds of [0, 60, 300]) {
      const pendingPolls = Math.round(pendingSeconds / getEverySeconds);
      emulator.enqueueTasks(pendingSeconds === 0 ? { outcome: 'completed', inline: true } : { outcome: 'completed', pendingPolls });
      const r = await run(workflow, { tasks: [{ taskDetails: 'Benchmark task' }] });
      if (r.status !== 'SUCCEEDED') throw new Error(`benchmark run failed: ${r.error?.name}`);
      const polls = Math.max(0, r.stats.lambdaInvocations - 3);
      // Billed Lambda time: each poll holds for its GETs' pauses; every other call ~0.3 s.
      const pollSeconds = polls * Math.min(plan.holdSeconds, (getsPerPoll(plan) - 1) * plan.everySeconds) + polls * 0.3;
      const lambdaSeconds = pollSeconds + 3 * 0.3;
      const sfn = r.stats.stateTransitions * PRICE.perTransition;
      const lambda = lambdaSeconds * LAMBDA_GB * PRICE.perGbSecond + r.stats.lambdaInvocations * PRICE.perRequest;
      const events = r.stats.stateTransitions * 3;
      console.log(`  ${label.padEnd(32)}${String(pendingSeconds).padStart(3)} s ${String(r.stats.stateTransitions).padStart(8)}     ${sfn.toFixed(5)}   ${lambda.toFixed(5)}   ${(sfn + lambda).toFixed(5)}   ~${events}`);
    }
  }
  console.log('\n  History events are estimated as 3 per transition (entered, exited, and the Task scheduled/started/succeeded');
  console.log('  trio spread over Task states); an execution may hold 25,000. Lambda time for the default plan is the hold.');
  await emulator.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
