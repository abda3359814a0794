/**
 * One temporary folder for the whole run, removed at its end: every test worker (and every child process a test
 * starts with the worker's environment) makes its temporary files in it. aws-cdk-lib makes a `cdk.out` folder in the
 * temporary directory for each App without an outdir and never removes it; tests make folders for results,
 * configs and packages. Without this each run left a few hundred of them behind.
 *
 * tsx caches the code it transforms in that folder too, so each run starts with an empty cache, and the first child
 * processes (several start at once) would each transform the same files: about 0.5 s of CPU more per process. One
 * process fills the cache first (test/fixtures/warm-tsx-cache.cjs), while vitest starts its workers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startProcess } from './helpers/child-process';

const ROOT = path.join(__dirname, '..');

export default function setup(): () => Promise<void> {
  const root = mkdtempSync(path.join(tmpdir(), 'webrun-sfn-test-'));
  process.env.TMPDIR = root;
  // Only ever a head start: a warm-up that fails leaves the children to transform their files themselves.
  const warmed = startProcess(process.execPath, [path.join(__dirname, 'fixtures', 'warm-tsx-cache.cjs')], { cwd: ROOT }).done.catch(() => undefined);
  return async () => {
    await warmed;
    rmSync(root, { recursive: true, force: true });
  };
}
