import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first (their wall time in a full run, measured on 2 cores: 13 s for the package
 * down to 1.1 s for the input validator), so that short files are left for the end and both workers finish together.
 * vitest orders files by their last durations when it has them, but a clean clone has none and it then runs the
 * largest files first: the checked synth, a small file, came last and kept one core busy 5 s after the other had
 * finished; later, the emulator process's tests (3.5 s, mostly waiting on child processes) ended a run alone, the
 * other worker idle. Files not listed follow, in vitest's order.
 */
const LONGEST_FIRST = [
  'test/package/consumer.test.ts',
  'test/lib/checked-synth.test.ts',
  'test/local/keep-results.test.ts',
  'test/types.test.ts',
  'test/cli/local.test.ts',
  'test/local/emulator-cli.test.ts',
  'test/local/fault-matrix.test.ts',
  'test/local/batch.test.ts',
  'test/cli/local-batch.test.ts',
  'test/lib/webrun-workflow.test.ts',
  'test/local/workflow.test.ts',
  'test/local/emulator/doorbell.test.ts',
  'test/local/guardrails.test.ts',
  'test/cli/commands.test.ts',
  'test/lambdas/shared/webrun-client.test.ts',
  'test/local/webhook.test.ts',
  'test/lib/webrun-batch.test.ts',
  'test/local/emulator.test.ts',
  'test/local/library-shims.test.ts',
  'test/local/emulator/max-duration.test.ts',
  'test/lambdas/shared/input.test.ts',
  'test/local/vendor-example.test.ts',
];
const ROOT = path.dirname(fileURLToPath(import.meta.url));
// A renamed file would silently lose its place.
for (const file of LONGEST_FIRST) if (!existsSync(path.join(ROOT, file))) throw new Error(`vitest.config.mts: ${file}, listed in LONGEST_FIRST, does not exist`);

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification): number => {
      const i = LONGEST_FIRST.indexOf(path.relative(this.ctx.config.root, file.moduleId));
      return i === -1 ? LONGEST_FIRST.length : i;
    };
    // Array.prototype.sort is stable: the other files keep vitest's order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  resolve: {
    // aws-local-stepfunctions as `npm start` loads it: its CommonJS build, which local/library-shims.ts loads edited
    // (an `import` would get its ES module build, unedited).
    alias: { 'aws-local-stepfunctions': createRequire(import.meta.url).resolve('aws-local-stepfunctions') },
  },
  test: {
    sequence: { sequencer: LongestFirst },
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Test files share each worker's module cache: aws-cdk-lib, the SDK and the state machine are loaded once per
    // worker instead of once per file (a third less CPU for the suite). Files must not leave global state behind:
    // SDK mocks are reset in their beforeEach, emulators closed in afterAll.
    isolate: false,
    // Two workers even on two cores (vitest's default is one fewer than the cores): much of the suite waits on child
    // processes, sockets and scaled timers rather than computing, so a second worker cuts the wall time by a third.
    // A third was not clearly faster: on fresh clones, 4 interleaved pairs differed by -1.9 to +2.9 s (51.0/52.9,
    // 38.1/35.2, 40.4/40.7, 48.5/45.6 s); and one fresh-clone run of 20 with three failed, in a test its output did not
    // keep, where no run with two has (with two, each worker has a core when it needs one).
    maxWorkers: 2,
    // Up to 10 tests at once within a file's concurrent suites (vitest's default is 5): those suites are local runs
    // and emulator tests whose time is mostly scaled waits, each with an emulator of its own.
    maxConcurrency: 10,
    // WebAssembly with V8's baseline compiler only: the CloudFormation validation engine (a 9 MB module, in the checked
    // synth) otherwise spends more CPU optimizing its code in background threads than it saves (about 1.3 s less CPU).
    // JavaScript optimized by Maglev at most, not TurboFan: test code runs briefly and in many shapes, so TurboFan's
    // background compiles (about 6 s of CPU in the two workers) mostly optimize code that is soon done with. Maglev
    // ships in Node 22 (Lambda's runtime) and is behind this flag in Node 20. Measured in 10 interleaved pairs of full
    // runs on 2 cores: 7 % less CPU and 3 s less wall time on average, faster in 8 of the 10.
    execArgv: ['--liftoff-only', '--maglev', '--max-opt=2'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // CDK_VALIDATION=false: aws-cdk-lib validates every synthesized template against the CloudFormation schemas, with
    // a WebAssembly engine that takes 2 to 3.5 s (3 to 6 s of CPU) to start in a worker, again for every new set of
    // resource types. The checked synth (test/lib/checked-synth.test.ts) runs that validation explicitly, on every
    // stack shape.
    // CDK_CONTEXT_JSON (context every App reads): no stack traces in construct metadata. Every stack, L1 resource and
    // annotation captures one, which vitest maps through source maps: about 1 s of CPU across the suite, for metadata
    // no test reads (`cdk synth` keeps them).
    // GOGC=off for the Go programs the tests start (tsgo's type check and the build's compile, esbuild): tsgo keeps
    // nearly everything it allocates (640 MB live for the type check), so its collector frees little. About 1 s less
    // CPU for the same peak memory (732 MB against 706).
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      CDK_VALIDATION: 'false',
      CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:disable-creation-stack-traces': true, 'aws:cdk:disable-stack-trace': true }),
      GOGC: 'off',
    },
  },
});
