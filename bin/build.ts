#!/usr/bin/env node
/**
 * `npm run build` (also run by `npm pack` and `npm publish`, as `prepack`): the package a CDK app installs, in dist/.
 * - the construct compiled by tsc (tsconfig.build.json): JavaScript and type declarations of index.ts and what it
 *   imports;
 * - every Lambda entry point (each lambdas/*.ts) bundled by esbuild into dist/lambdas/<entry>/index.js, with the
 *   options NodejsFunction uses when synthesizing from the sources (LAMBDA_BUNDLING), so an installed construct
 *   deploys the same code without tsx or esbuild.
 * It reports on stderr, so stdout stays the caller's (`npm pack --json` prints clean JSON).
 */
import { buildSync } from 'esbuild';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAMBDA_BUNDLING } from '../lib/webrun-function';

const ROOT = path.join(__dirname, '..');
export const DIST = path.join(ROOT, 'dist');
const LAMBDA_SOURCES = path.join(ROOT, 'lambdas');
/** Folders of this repo that must never reach dist/: an import from lib/ into them would ship local tooling. */
const NOT_PACKAGED = ['bin', 'cli', 'local', 'test', 'examples'];

/** The Lambda entry points: every .ts file directly in lambdas/ (lambdas/shared holds what they share). */
export function lambdaEntries(): string[] {
  return fs.readdirSync(LAMBDA_SOURCES, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => e.name.slice(0, -'.ts'.length))
    .sort();
}

/** Bundles one entry point into <outDir>/<entry>/index.js (+ .map), as NodejsFunction would. */
export function bundleLambda(entry: string, outDir: string): string {
  const outfile = path.join(outDir, entry, 'index.js');
  buildSync({
    entryPoints: [path.join(LAMBDA_SOURCES, `${entry}.ts`)],
    outfile,
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: LAMBDA_BUNDLING.target,
    minify: LAMBDA_BUNDLING.minify,
    sourcemap: LAMBDA_BUNDLING.sourceMap,
    sourcesContent: LAMBDA_BUNDLING.sourcesContent,
    external: [...LAMBDA_BUNDLING.externalModules],
    logLevel: 'warning',
  });
  return outfile;
}

function compile(): void {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal})`);
  const leaked = NOT_PACKAGED.filter((dir) => fs.existsSync(path.join(DIST, dir)));
  if (leaked.length > 0) {
    throw new Error(`dist/ must hold the construct only, but the compiled code imports from ${leaked.map((d) => `${d}/`).join(', ')}`);
  }
}

function main(): void {
  const started = Date.now();
  fs.rmSync(DIST, { recursive: true, force: true });
  compile();
  const bundlesDir = path.join(DIST, 'lambdas');
  const entries = lambdaEntries();
  for (const entry of entries) {
    if (fs.existsSync(path.join(bundlesDir, entry))) {
      // dist/lambdas also holds the compiled lambdas/shared: an entry point of that name would overwrite it.
      throw new Error(`lambdas/${entry}.ts: its bundle folder dist/lambdas/${entry} is taken by compiled code; rename the entry point`);
    }
    const outfile = bundleLambda(entry, bundlesDir);
    process.stderr.write(`dist/lambdas/${entry}/index.js  ${(fs.statSync(outfile).size / 1024).toFixed(0)} KiB\n`);
  }
  process.stderr.write(`built dist/ (construct + ${entries.length} Lambda bundles) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`build: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
