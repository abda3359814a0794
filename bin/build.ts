#!/usr/bin/env node
/**
 * `npm run build` (also run by `npm pack` and `npm publish`, as `prepack`): the package a CDK app installs, in dist/.
 * - the construct compiled by tsc (tsconfig.build.json): JavaScript and type declarations of index.ts and what it
 *   imports;
 * - the one Lambda entry point (lambdas/index.ts, whose exports are the handlers of every function) bundled by
 *   esbuild into dist/lambdas/bundle/index.js, with the options NodejsFunction uses when synthesizing from the
 *   sources (LAMBDA_BUNDLING), so an installed construct deploys the same code without tsx or esbuild.
 * It reports on stderr, so stdout stays the caller's (`npm pack --json` prints clean JSON).
 */
import { buildSync } from 'esbuild';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAMBDA_BUNDLE_FOLDER, LAMBDA_BUNDLING, LAMBDA_ENTRY } from '../lib/webrun-function';

const ROOT = path.join(__dirname, '..');
export const DIST = path.join(ROOT, 'dist');
/** Folders of this repo that must never reach dist/: an import from lib/ into them would ship local tooling. */
const NOT_PACKAGED = ['bin', 'cli', 'local', 'test', 'examples'];

/** Bundles the Lambda entry point into <outDir>/bundle/index.js (+ .map), as NodejsFunction would. */
export function bundleLambda(outDir: string): string {
  const outfile = path.join(outDir, LAMBDA_BUNDLE_FOLDER, 'index.js');
  buildSync({
    entryPoints: [LAMBDA_ENTRY],
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
  const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc'); // not in its exports
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
  if (fs.existsSync(path.join(bundlesDir, LAMBDA_BUNDLE_FOLDER))) {
    // dist/lambdas also holds the compiled lambdas/shared: a bundle folder of the same name would overwrite it.
    throw new Error(`the Lambda bundle's folder dist/lambdas/${LAMBDA_BUNDLE_FOLDER} is taken by compiled code; rename LAMBDA_BUNDLE_FOLDER (lib/webrun-function.ts)`);
  }
  const outfile = bundleLambda(bundlesDir);
  process.stderr.write(`${path.relative(ROOT, outfile)}  ${(fs.statSync(outfile).size / 1024).toFixed(0)} KiB (map ${(fs.statSync(`${outfile}.map`).size / 1024).toFixed(0)} KiB)\n`);
  process.stderr.write(`built dist/ (construct + the Lambda bundle) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`build: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
