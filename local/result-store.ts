/**
 * The local result store: a folder standing in for the stack's S3 bucket. A stored result is a JSON file and its
 * reference a `file://` URI, so `webrun-sfn result` and the local summary read it back the way they read S3.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ResultStore } from '../lambdas/shared/result-store';

/** Where local runs keep stored results unless `--results-dir` says otherwise. */
export function defaultResultsDir(): string {
  return join(tmpdir(), 'webrun-sfn-results');
}

/**
 * Makes sure `dir` exists and takes files, before a run opens any session: a result the run could not store would
 * otherwise fail the run after its task completed, and be lost. Missing folders are made one level at a time
 * (Node 20's recursive mkdir never returns for a path under /proc). Returns the absolute path; throws the
 * file system's error.
 */
export function prepareResultsDir(dir: string): string {
  const base = resolve(dir);
  const missing: string[] = [];
  for (let at = base; !existsSync(at) && dirname(at) !== at; at = dirname(at)) missing.unshift(at);
  for (const folder of missing) mkdirSync(folder);
  const probe = join(base, `.webrun-sfn-write-check-${process.pid}`);
  writeFileSync(probe, '');
  rmSync(probe);
  return base;
}

export function folderResultStore(root: string): ResultStore & { root: string } {
  const base = resolve(root);
  return {
    root: base,
    async put(key, body) {
      const file = resolve(base, key);
      if (!file.startsWith(base + sep)) throw new Error(`result key ${JSON.stringify(key)} leaves the results folder`);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, body, 'utf8');
      return pathToFileURL(file).href;
    },
    async get(uri) {
      if (!uri.startsWith('file://')) throw new Error(`${JSON.stringify(uri)} is not a file:// result reference`);
      return readFile(fileURLToPath(uri), 'utf8');
    },
  };
}
