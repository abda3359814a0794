/**
 * One temporary folder for the whole run, removed at its end: every test worker (and every child process a test
 * starts with the worker's environment) makes its temporary files in it. aws-cdk-lib makes a `cdk.out` folder in the
 * temporary directory for each App without an outdir and never removes it; tests make folders for results,
 * configs and packages. Without this each run left a few hundred of them behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(path.join(tmpdir(), 'webrun-sfn-test-'));
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
