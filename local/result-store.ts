/**
 * The local result store: a folder standing in for the stack's S3 bucket. A stored result is a JSON file and its
 * reference a `file://` URI, so `webrun-sfn result` and the local summary read it back the way they read S3.
 */
import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ResultStore } from '../lambdas/shared/result-store';

/**
 * Where local runs keep stored results unless `--results-dir` says otherwise: a folder of the user's own in the
 * temporary directory (results may be private, and that directory is shared by every user of the machine).
 */
export function defaultResultsDir(): string {
  return join(tmpdir(), `webrun-sfn-results-${process.getuid?.() ?? userInfo().username}`);
}

/** Folders only their owner may enter, files only their owner may read: stored results may be private. */
const PRIVATE_FOLDER = 0o700;
const PRIVATE_FILE = 0o600;

/**
 * Makes sure `dir` exists and takes files, before a run opens any session: a result the run could not store would
 * otherwise fail the run after its task completed, and be lost. Missing folders are made one level at a time
 * (Node 20's recursive mkdir never returns for a path under /proc), each for its owner only; `ownedOnly` refuses a
 * folder another user owns. Returns the absolute path; throws the file system's error, or one naming a symbolic link
 * that leads nowhere.
 */
export function prepareResultsDir(dir: string, { ownedOnly = false } = {}): string {
  const base = resolve(dir);
  const missing: string[] = [];
  for (let at = base; !existsSync(at) && dirname(at) !== at; at = dirname(at)) {
    // existsSync follows a link: one to nothing "does not exist", yet mkdir cannot make a folder in its place and
    // would only say EEXIST. The link is the user's to mend (or to point elsewhere): its target is not made here.
    const link = brokenLink(at);
    if (link) throw new Error(`${at === base ? 'it' : at} ${link}`);
    missing.unshift(at);
  }
  for (const folder of missing) mkdirSync(folder, { mode: PRIVATE_FOLDER });
  // The default's name is known in advance: another user could have made it first, to read what lands in it.
  const uid = process.getuid?.();
  if (ownedOnly && uid !== undefined && statSync(base).uid !== uid) throw new Error('it belongs to another user');
  const probe = join(base, `.webrun-sfn-write-check-${process.pid}`);
  writeFileSync(probe, '');
  rmSync(probe);
  return base;
}

/** What is wrong with `path` when it is a symbolic link that cannot be followed (to nothing, or round in a loop); else undefined. */
function brokenLink(path: string): string | undefined {
  let target: string;
  try {
    if (!lstatSync(path).isSymbolicLink()) return undefined;
    target = resolve(dirname(path), readlinkSync(path));
  } catch {
    return undefined; // Not there at all, or not reachable: mkdir says which.
  }
  try {
    statSync(path);
    return undefined;
  } catch (err) {
    const { code } = err as NodeJS.ErrnoException;
    if (code === 'ELOOP') return `is a symbolic link to ${target}, which leads back to itself`;
    if (code === 'ENOENT') return `is a symbolic link to ${target}, which does not exist`;
    return undefined; // Say, unreadable on the way: mkdir says so.
  }
}

export function folderResultStore(root: string): ResultStore & { root: string } {
  const base = resolve(root);
  return {
    root: base,
    async put(key, body) {
      const file = resolve(base, key);
      if (!file.startsWith(base + sep)) throw new Error(`result key ${JSON.stringify(key)} leaves the results folder`);
      await mkdir(dirname(file), { recursive: true, mode: PRIVATE_FOLDER });
      await writeFile(file, body, { encoding: 'utf8', mode: PRIVATE_FILE });
      return pathToFileURL(file).href;
    },
    async get(uri) {
      if (!uri.startsWith('file://')) throw new Error(`${JSON.stringify(uri)} is not a file:// result reference`);
      return readFile(fileURLToPath(uri), 'utf8');
    },
  };
}
