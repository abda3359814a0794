/**
 * The package as another CDK app gets it: `npm pack` (whose prepack runs `npm run build`), the tarball installed
 * offline into a fresh CDK app written in plain JavaScript (aws-cdk-lib and constructs linked from this repo's
 * node_modules), and that app synthesized in a child process in which tsx, esbuild and typescript cannot be loaded.
 * test/package/consumer.test.ts asserts on what this produces; `npm run bench` prints how long the synth took.
 * The app is test/package/consumer-app/app.js, the file README.md shows in "Use the construct in your own CDK app".
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
export const CONSUMER_FIXTURE = path.join(ROOT, 'test', 'package', 'consumer-app');
/** A --require hook that refuses and reports any load of tsx, esbuild or typescript. */
export const NO_BUILD_TOOLS_GUARD = path.join(ROOT, 'test', 'package', 'no-build-tools.cjs');
/** The stack the fixture app defines. */
export const CONSUMER_STACK = 'MyWebrunWorkflows';

export interface PackedFile { path: string; size: number }
export interface Packed { filename: string; size: number; files: PackedFile[] }
export interface GuardReport { attempts: string[]; loaded: string[] }

export interface ConsumerApp {
  /** The folder all of it lives in (remove it when done). */
  tmp: string;
  packed: Packed;
  /** The app's directory, with the package installed in its node_modules. */
  dir: string;
}

export interface ConsumerSynth {
  status: number | null;
  stderr: string;
  wallMs: number;
  guard: GuardReport;
  /** The synth's cdk.out. */
  outdir: string;
}

/** The environment of the child processes: none of vitest's or npm's own settings (NODE_OPTIONS included). */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME ?? os.tmpdir(), ...extra };
}

/** Packs this repo and installs the tarball, offline, into a copy of the fixture app in a new temporary folder. */
export function installConsumerApp(): ConsumerApp {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webrun-sfn-package-'));
  // npm pack runs prepack (npm run build), as `npm publish` does.
  const json = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const packed = (JSON.parse(json) as Packed[])[0];

  const dir = path.join(tmp, 'app');
  fs.mkdirSync(dir);
  for (const file of fs.readdirSync(CONSUMER_FIXTURE)) fs.copyFileSync(path.join(CONSUMER_FIXTURE, file), path.join(dir, file));
  // The tarball as npm installs it; the peers linked from this repo (offline: nothing comes from the registry).
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({
    name: 'my-webrun-app',
    private: true,
    dependencies: {
      'webrun-sfn': `file:${path.join(tmp, packed.filename)}`,
      'aws-cdk-lib': `file:${path.join(ROOT, 'node_modules', 'aws-cdk-lib')}`,
      constructs: `file:${path.join(ROOT, 'node_modules', 'constructs')}`,
    },
  }, null, 2));
  // --legacy-peer-deps: npm's peer placement fails on linked peers; they are installed explicitly above.
  execFileSync('npm', ['install', '--offline', '--legacy-peer-deps', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { tmp, packed, dir };
}

/**
 * Synthesizes the installed app (`node app.js`) under the guard, into `<tmp>/cdk.out`. Without `validation`,
 * CDK_VALIDATION=false skips aws-cdk-lib's own template validation (a WebAssembly engine, 2 to 15 s on this 2-core
 * machine depending on load): it is the same for any app and is not what this package adds to a synth.
 */
export function synthConsumerApp(app: ConsumerApp, options: { validation?: boolean } = {}): ConsumerSynth {
  const outdir = path.join(app.tmp, 'cdk.out');
  const guardReport = path.join(app.tmp, 'guard.json');
  fs.rmSync(guardReport, { force: true });
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--require', NO_BUILD_TOOLS_GUARD, 'app.js'], {
    cwd: app.dir, encoding: 'utf8', timeout: 60_000,
    env: childEnv({ CDK_OUTDIR: outdir, GUARD_REPORT: guardReport, ...(options.validation ? {} : { CDK_VALIDATION: 'false' }) }),
  });
  const wallMs = Date.now() - started;
  const guard = fs.existsSync(guardReport)
    ? (JSON.parse(fs.readFileSync(guardReport, 'utf8')) as GuardReport)
    : { attempts: [`no report: the synth ended by ${r.signal ?? r.error?.message ?? 'an unknown cause'}`], loaded: [] };
  return { status: r.status, stderr: r.stderr, wallMs, guard, outdir };
}
