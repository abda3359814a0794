/**
 * The package as another CDK app gets it (bin/consumer-app.ts packs it, installs it offline into a fresh CDK app in
 * plain JavaScript and synthesizes that app where tsx, esbuild and typescript cannot be loaded), and what it holds.
 * How long that synth takes is a figure `npm run bench` prints, not an assertion here.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib/core';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { StringLiteral } from 'typescript/unstable/ast';
import { API } from 'typescript/unstable/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  childEnv,
  CONSUMER_FIXTURE as FIXTURE,
  CONSUMER_STACK as STACK,
  installConsumerApp,
  NO_BUILD_TOOLS_GUARD as GUARD,
  synthConsumerApp,
  type ConsumerSynth,
  type GuardReport,
  type Packed,
} from '../../bin/consumer-app';
import { WEBRUN_HANDLERS, WebrunErrors } from '../../lambdas/shared/contract';
import { WebrunWorkflow } from '../../index';
import { LAMBDA_BUNDLE_FOLDER } from '../../lib/webrun-function';

const ROOT = path.join(__dirname, '..', '..');
const MAX_TARBALL_BYTES = 1_000_000;

interface Resource { Type: string; Properties: Record<string, any> }
interface Template { Resources: Record<string, Resource> }

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function lambdas(template: Template): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
}

/** The export a Lambda runs: its handler is `index.<export>`. */
function exportOf(fn: Resource): string {
  expect(fn.Properties.Handler).toMatch(/^index\.[A-Za-z]+$/);
  return String(fn.Properties.Handler).slice('index.'.length);
}

/** The folder a synthesized Lambda's code was staged in: the file asset its `Code.S3Key` names. */
function codeDir(outdir: string, code: { S3Key?: unknown }): string {
  expect(code.S3Key, 'an S3Key that names a file asset').toMatch(/^[0-9a-f]{64}\.zip$/);
  const manifest = readJson<{ files: Record<string, { source: { path: string; packaging?: string } }> }>(path.join(outdir, `${STACK}.assets.json`));
  const asset = manifest.files[String(code.S3Key).slice(0, -'.zip'.length)];
  expect(asset?.source.packaging).toBe('zip');
  return path.join(outdir, asset.source.path);
}

let tmp: string;
let packed: Packed;
/** The consumer app: its directory, its synth's cdk.out, and what the synth did. */
let app: string;
let appOut: string;
let synth: ConsumerSynth;

beforeAll(() => {
  const installed = installConsumerApp();
  ({ tmp, packed, dir: app } = installed);
  synth = synthConsumerApp(installed);
  appOut = synth.outdir;
}, 180_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('ships the compiled construct, one Lambda bundle, LICENSE and README, and no sources, tests or local tools, in at most 1 MB', () => {
    const paths = packed.files.map((f) => f.path);
    expect(packed.size).toBeLessThanOrEqual(MAX_TARBALL_BYTES);
    expect(paths).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']));
    // npm ships every "bin" file; bin/webrun-sfn.js says the command runs from a clone.
    expect(paths.filter((p) => !p.startsWith('dist/')).sort()).toEqual(['LICENSE', 'README.md', 'bin/webrun-sfn.js', 'package.json']);
    expect(paths.filter((p) => /\.ts$/.test(p) && !p.endsWith('.d.ts'))).toEqual([]);
    expect(paths.filter((p) => /^dist\/(test|local|cli|bin|examples)\//.test(p))).toEqual([]);
    // One bundle for every Lambda (beside it in dist/lambdas, the compiled lambdas/shared the construct imports).
    expect(paths.filter((p) => /^dist\/lambdas\/[^/]+\/index\.js(\.map)?$/.test(p)).sort()).toEqual([
      `dist/lambdas/${LAMBDA_BUNDLE_FOLDER}/index.js`,
      `dist/lambdas/${LAMBDA_BUNDLE_FOLDER}/index.js.map`,
    ]);
    expect(paths.filter((p) => p.startsWith('dist/lambdas/') && !p.startsWith('dist/lambdas/shared/')).sort()).toEqual([
      `dist/lambdas/${LAMBDA_BUNDLE_FOLDER}/index.js`,
      `dist/lambdas/${LAMBDA_BUNDLE_FOLDER}/index.js.map`,
    ]);
  });

  it('has type declarations that import nothing but their own files, the peer dependencies and the declared dependencies', () => {
    const root = path.join(app, 'node_modules', 'webrun-sfn');
    const declarations = packed.files.filter((f) => f.path.endsWith('.d.ts')).map((f) => path.join(root, f.path));
    // The declarations as TypeScript parses them (TypeScript 7's API: a project of those files alone, unresolved).
    const config = path.join(tmp, 'tsconfig.declarations.json');
    fs.writeFileSync(config, JSON.stringify({ compilerOptions: { noEmit: true, noResolve: true, types: [], module: 'node20' }, files: declarations }));
    const api = new API({ cwd: tmp });
    let imports: string[];
    try {
      const { program } = api.updateSnapshot({ openProjects: [config] }).getProject(config)!;
      imports = declarations.flatMap((file) => program.getSourceFile(file)!.imports.map((specifier) => (specifier as StringLiteral).text));
    } finally {
      api.close();
    }
    expect(imports).toEqual(expect.arrayContaining(['aws-cdk-lib/core', 'aws-cdk-lib/aws-stepfunctions', 'constructs', 'valibot']));
    // aws-cdk-lib by the submodules it uses: its root would make a type check of the construct parse all 2,560 of its
    // declaration files instead of 1,310 (the compile in `npm run build` takes half as long).
    expect(imports).not.toContain('aws-cdk-lib');
    const declared = Object.keys((JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {});
    const outside = imports.filter((spec) => !/^(\.{1,2}\/|aws-cdk-lib(\/|$)|constructs$)/.test(spec));
    // valibot: the config and input types are inferred from its schemas, and the validators run on it at synth.
    expect(declared).toEqual(['valibot']);
    expect([...new Set(outside)].filter((spec) => !declared.includes(spec))).toEqual([]);
  });

  it('exports the constructs and the error names from one entry point', () => {
    const r = spawnSync(process.execPath, ['-e', `const m = require('webrun-sfn');
      console.log(JSON.stringify({ keys: Object.keys(m).sort(), errors: m.WebrunErrors }))`], { cwd: app, encoding: 'utf8', env: childEnv() });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ keys: ['Completion', 'LambdaLogLevel', 'SessionCleanup', 'WebrunBatch', 'WebrunErrors', 'WebrunObservability', 'WebrunStack', 'WebrunTriggers', 'WebrunWorkflow'], errors: WebrunErrors });
  });
});

describe('a plain JavaScript CDK app that installed the package', () => {
  it('synthesizes the workflow without loading or running tsx, esbuild or typescript', () => {
    expect(synth.status, synth.stderr).toBe(0);
    expect(synth.guard).toEqual({ attempts: [], loaded: [] });
    const template = readJson<Template>(path.join(appOut, `${STACK}.template.json`));
    expect(Object.values(template.Resources).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine')).toHaveLength(1);
  });

  it('deploys every Lambda with the pre-built bundle, as it is in the package, as one asset, each running its own export', () => {
    const template = readJson<Template>(path.join(appOut, `${STACK}.template.json`));
    const bundle = sha256(path.join(app, 'node_modules', 'webrun-sfn', 'dist', 'lambdas', LAMBDA_BUNDLE_FOLDER, 'index.js'));
    const fns = lambdas(template);
    // The five steps and the session cleanup (the fixture polls: no doorbell receiver). CDK provides no Lambda of its own here.
    expect(fns).toHaveLength(6);
    for (const [id, fn] of fns) {
      const index = path.join(codeDir(appOut, fn.Properties.Code), 'index.js');
      expect(fs.existsSync(index), `${id}: index.js in its code asset`).toBe(true);
      expect(sha256(index), `${id}: its code is the package's bundle`).toBe(bundle);
    }
    expect(new Set(fns.map(([, fn]) => fn.Properties.Code.S3Key)).size, 'one code asset for every function').toBe(1);
    expect(fns.map(([, fn]) => exportOf(fn)).sort()).toEqual(WEBRUN_HANDLERS.filter((h) => h !== 'receiveDoorbell').sort());
  });

  it('deploys the same handlers as the sources: the same functions, and code byte for byte what NodejsFunction bundles', () => {
    // The fixture's stack, synthesized in this repo from the sources: WebrunFunction is a NodejsFunction here.
    const sourceOut = path.join(tmp, 'source.out');
    const sourceApp = new App({ outdir: sourceOut, builtinCloudFormationValidation: false });
    const stack = new Stack(sourceApp, STACK);
    const workflow = new WebrunWorkflow(stack, 'Workflow');
    expect(workflow.functions.startSession).toBeInstanceOf(NodejsFunction);
    sourceApp.synth();
    const fromSource = Object.fromEntries(lambdas(readJson<Template>(path.join(sourceOut, `${STACK}.template.json`))));
    const fromPackage = Object.fromEntries(lambdas(readJson<Template>(path.join(appOut, `${STACK}.template.json`))));

    expect(Object.keys(fromPackage).sort()).toEqual(Object.keys(fromSource).sort());
    // Each function runs the export of its name (the package's functions have the same handlers: see below).
    const functions = { ...workflow.functions, cleanupSession: workflow.cleanup!.function };
    for (const [name, fn] of Object.entries(functions)) {
      const id = stack.getLogicalId(fn.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);
      expect(fromSource[id]?.Properties.Handler, name).toBe(`index.${name}`);
    }
    // NodejsFunction bundled the one entry point alike for every function: one asset.
    expect(new Set(Object.values(fromSource).map((fn) => fn.Properties.Code.S3Key)).size).toBe(1);
    for (const [id, fn] of Object.entries(fromSource)) {
      const { Code: sourceCode, ...sourceProps } = fn.Properties;
      const { Code: packageCode, ...packageProps } = fromPackage[id].Properties;
      // Runtime, architecture, handler, environment, tracing, logging, role, timeout, memory: all equal.
      expect(packageProps, id).toEqual(sourceProps);
      const sourceBundle = fs.readFileSync(path.join(codeDir(sourceOut, sourceCode), 'index.js'));
      const packageBundle = fs.readFileSync(path.join(codeDir(appOut, packageCode), 'index.js'));
      expect(packageBundle.equals(sourceBundle), `${id}: the pre-built index.js is the one NodejsFunction bundles`).toBe(true);
    }
  });

  it('gets a bundle that loads and exports a function under every handler name the construct uses, and nothing else', () => {
    const bundle = path.join(app, 'node_modules', 'webrun-sfn', 'dist', 'lambdas', LAMBDA_BUNDLE_FOLDER, 'index.js');
    // The Lambda runtime provides @aws-sdk/*; here this repo's node_modules does.
    const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(bundle)});
      console.log(JSON.stringify(Object.fromEntries(Object.keys(m).map((k) => [k, typeof m[k]]))))`], {
      encoding: 'utf8', env: childEnv({ NODE_PATH: path.join(ROOT, 'node_modules'), AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }),
    });
    expect(r.status, r.stderr).toBe(0);
    const exported = JSON.parse(r.stdout) as Record<string, string>;
    expect(exported).toEqual(Object.fromEntries(WEBRUN_HANDLERS.map((name) => [name, 'function'])));
    // Every handler the consumer's functions name is among them.
    const used = lambdas(readJson<Template>(path.join(appOut, `${STACK}.template.json`))).map(([, fn]) => exportOf(fn));
    expect(used.filter((name) => exported[name] !== 'function')).toEqual([]);
  });

  it('is the app the README shows, in its section "Use the construct in your own CDK app"', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Use the construct in your own CDK app\n');
    expect(start, 'the README has the section').toBeGreaterThan(0);
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end === -1 ? undefined : end);
    for (const file of ['app.js', 'cdk.json']) {
      expect(section, `the section shows ${file} verbatim`).toContain(fs.readFileSync(path.join(FIXTURE, file), 'utf8').trimEnd());
    }
  });

  it('gets the alarms, their TLS-only topic and a dashboard with the workflow alone', () => {
    const template = readJson<Template>(path.join(appOut, `${STACK}.template.json`));
    const count = (type: string) => Object.values(template.Resources).filter((r) => r.Type === type).length;
    expect({ alarms: count('AWS::CloudWatch::Alarm'), topics: count('AWS::SNS::Topic'), dashboards: count('AWS::CloudWatch::Dashboard') })
      .toEqual({ alarms: 4, topics: 1, dashboards: 1 });
    const topic = Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::SNS::Topic')![0];
    for (const alarm of Object.values(template.Resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm')) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
    }
  });
});

describe('the guard on the consumer synth', () => {
  it('catches a module that loads esbuild', () => {
    const report = path.join(tmp, 'guard-check.json');
    // From this repo, where esbuild is installed: the guard must still refuse it.
    const r = spawnSync(process.execPath, ['--require', GUARD, '-e', "try { require('esbuild') } catch {}"], {
      cwd: ROOT, encoding: 'utf8', env: childEnv({ GUARD_REPORT: report }),
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readJson<GuardReport>(report).attempts).toEqual(['require esbuild']);
  });
});
