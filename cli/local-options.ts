/**
 * What the local command's single runs (./local.ts) and batches (./local-batch.ts) share: the API they target (the
 * built-in emulator unless told otherwise), the local stand-ins for site secrets and emulator scripts, the batch
 * flags, and the usage error that exits 2.
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { BATCH_LIMITS } from '../lambdas/shared/batch-contract';
import { DEFAULT_BASE_URL } from '../lambdas/shared/contract';
import { isPlainObject } from '../lambdas/shared/schema/core';
import { fileCredentials, type SiteCredentialResolver } from '../lambdas/shared/site-credentials';
import { headerSafeKey } from '../lambdas/shared/webrun-client';
import type { SiteCredentialRef, WorkflowTask } from '../lambdas/shared/types';
import { startEmulator, validateTaskBehaviour, type Emulator, type TaskBehaviour } from '../local/emulator';
import { isLoopbackHost } from '../local/emulator/doorbell';
import { defaultResultsDir, prepareResultsDir } from '../local/result-store';
import { readJsonInput, withoutBom, type CliIo } from './process';

/** The key the built-in emulator is started with when no WEBRUN_API_KEY is set: it is no secret. */
const EMULATOR_KEY = 'local-emulator-key';

export class UsageError extends Error {
  constructor(message: string, readonly showUsage = true) {
    super(message);
  }
}

/**
 * The folder the user's relative paths are relative to: the one they typed the command in. `npm start` (or `npm run
 * cli`) runs in the package folder, not there, and names it in INIT_CWD; run directly, the command runs where typed.
 * INIT_CWD is trusted only when one of this package's own scripts launched the command (npm_lifecycle_script names
 * its entry point): every child of any npm script inherits it, so a command run from `npm test`, or from a shell or
 * script started under npm, would otherwise read a stale folder's files.
 */
export function userFolder(env: NodeJS.ProcessEnv): string {
  const invoked = env.INIT_CWD;
  const byOurScript = /\bbin\/(local|cli)\.ts\b/.test(env.npm_lifecycle_script ?? '');
  if (byOurScript && invoked && isAbsolute(invoked) && statSync(invoked, { throwIfNoEntry: false })?.isDirectory()) return invoked;
  return process.cwd();
}

/** A path the user gave (the input, a flag, a variable): the file it names, and how messages show it. */
export interface UserPath {
  /** As written. */
  given: string;
  /** What is opened: absolute, from the user's folder; `-` (stdin) as is. */
  path: string;
  /** For messages refusing it: as written, and where it was looked for when that is not the process's own folder. */
  shown: string;
}

export function userPath(given: string, folder: string): UserPath {
  if (given === '-') return { given, path: given, shown: given };
  const path = resolve(folder, given);
  const elsewhere = !isAbsolute(given) && path !== resolve(given);
  return { given, path, shown: elsewhere ? `${given} (${path})` : given };
}

/**
 * `read(file.path)`. The reader's error names the absolute path it opened; it is put back as the user wrote it
 * (`shown`), so that a relative path is recognised, with where it was looked for when that is elsewhere.
 */
export async function readUserFile<T>(file: UserPath, read: (path: string) => Promise<T>): Promise<T> {
  try {
    return await read(file.path);
  } catch (err) {
    if (err instanceof Error && file.path !== file.shown) err.message = err.message.replace(file.path, () => file.shown);
    throw err;
  }
}

/** The folder for results too large for the state (`--results-dir`, else the default), checked to take files before any session. */
export function resultsFolder(flag: string | undefined, folder: string): string {
  const dir = flag === undefined ? undefined : userPath(flag, folder);
  try {
    return prepareResultsDir(dir?.path ?? defaultResultsDir(), { ownedOnly: dir === undefined });
  } catch (err) {
    const what = dir ? `--results-dir ${dir.shown}` : `the results folder ${defaultResultsDir()}`;
    throw new UsageError(`${what} cannot hold results: ${(err as Error).message}`, false);
  }
}

export interface Target {
  baseUrl: string;
  apiKey: string;
  label: string;
  emulator?: Emulator;
  /** The real, billed API. */
  paid?: boolean;
}

export function isLoopback(url: URL): boolean {
  return isLoopbackHost(url.hostname);
}

/**
 * A wait scale under 1 shortens the poll pauses and the waits after a 429's Retry-After: right for an emulator, but
 * an API elsewhere (the real one above all) asks to be polled every 2 to 3 s, not faster, and to be retried no
 * sooner than it says. Refused before any session opens.
 */
function refuseShortWaits(waitScale: number, apiUrl: string): void {
  if (waitScale >= 1 || isLoopback(new URL(apiUrl))) return;
  throw new UsageError(
    `--wait-scale ${waitScale} is for an API on loopback (the built-in emulator): ${apiUrl} asks to be polled every 2 to 3 s, not faster, and to be retried no sooner than its Retry-After. Leave --wait-scale out (or use 1 or more), or unset WEBRUN_API_KEY to run against the built-in emulator`,
    false,
  );
}

export async function resolveTarget(flagUrl: string | undefined, env: NodeJS.ProcessEnv, waitScale = 1): Promise<Target> {
  const key = env.WEBRUN_API_KEY || undefined;
  // It goes into an Authorization header, which carries visible ASCII only (HTTP trims the spaces around it). Said
  // here, without the key, rather than as a request that "failed on the network".
  if (key && !headerSafeKey(key)) {
    throw new UsageError('WEBRUN_API_KEY holds a character an HTTP header cannot carry (a space, a line break or a non-ASCII letter inside it): check how it was pasted');
  }
  const explicit = flagUrl ?? (env.WEBRUN_BASE_URL || undefined);
  if (explicit !== undefined) {
    let url: URL;
    try {
      url = new URL(explicit);
    } catch {
      throw new UsageError(`${flagUrl !== undefined ? '--base-url' : 'WEBRUN_BASE_URL'} is not a URL: ${JSON.stringify(explicit)}`);
    }
    const name = flagUrl !== undefined ? '--base-url' : 'WEBRUN_BASE_URL';
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${name} must be http(s), got ${url.protocol}`);
    // fetch refuses such a URL; and the password would be printed with the URL.
    if (url.username || url.password) throw new UsageError(`${name} must not carry a user name or password (the API key is the credential), got ${url.protocol}//…@${url.host}`);
    // The API key travels in every request: plain http only where it cannot leave the machine.
    if (url.protocol === 'http:' && !isLoopback(url)) throw new UsageError(`${name} must be https unless it is on loopback (the API key travels in it), got ${explicit}`);
    if (!key && !isLoopback(url)) throw new UsageError('WEBRUN_API_KEY is not set: it is needed for a non-local base URL');
    refuseShortWaits(waitScale, explicit);
    return { baseUrl: explicit, apiKey: key ?? EMULATOR_KEY, label: explicit };
  }
  if (key) {
    refuseShortWaits(waitScale, DEFAULT_BASE_URL);
    return { baseUrl: DEFAULT_BASE_URL, apiKey: key, label: `${DEFAULT_BASE_URL} (the real webrun API)`, paid: true };
  }
  const emulator = await startEmulator({ port: 0, apiKey: EMULATOR_KEY });
  return { baseUrl: emulator.url, apiKey: EMULATOR_KEY, label: `${emulator.url} (built-in emulator)`, emulator };
}

/** What a local batch run is given (`--batch`), checked; undefined for a single run (where the batch flags are refused). */
export interface BatchFlags {
  items: string;
  template: string;
  concurrency: number;
  tolerate: number;
}

export function batchFlags(values: { batch?: string; template?: string; concurrency?: string; tolerate?: string }, positionals: string[]): BatchFlags | undefined {
  if (values.batch === undefined) {
    const stray = (['template', 'concurrency', 'tolerate'] as const).find((flag) => values[flag] !== undefined);
    if (stray) throw new UsageError(`--${stray} applies to a batch: add --batch <items>`);
    return undefined;
  }
  if (positionals.length > 0) throw new UsageError(`a batch takes its items from --batch and its input from --template, not ${positionals.join(' ')}`);
  if (values.batch.trim() === '') throw new UsageError('--batch must name an items file');
  if (values.template === undefined || values.template.trim() === '') throw new UsageError('--batch needs --template <t.json>, the workflow input every item runs with');
  const concurrency = values.concurrency === undefined ? BATCH_LIMITS.defaultMaxConcurrency : Number(values.concurrency);
  if (values.concurrency?.trim() === '' || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > BATCH_LIMITS.maxConcurrency) {
    throw new UsageError(`--concurrency must be a whole number from 1 to ${BATCH_LIMITS.maxConcurrency}, got ${JSON.stringify(values.concurrency)}`);
  }
  const tolerate = values.tolerate === undefined ? 0 : Number(values.tolerate.replace(/%$/, ''));
  if (values.tolerate?.trim() === '' || !Number.isFinite(tolerate) || tolerate < 0 || tolerate > 100) {
    throw new UsageError(`--tolerate must be a percentage from 0 to 100, got ${JSON.stringify(values.tolerate)}`);
  }
  return { items: values.batch, template: values.template, concurrency, tolerate };
}

/**
 * The local stand-in for the site-credential secrets: WEBRUN_SITE_SECRETS_FILE names a JSON file
 * `{ "webrun-sfn/<name>": { "username": "...", "password": "..." } }`. Errors never quote the file's text.
 */
export async function readSiteCredentials(env: NodeJS.ProcessEnv, folder: string): Promise<SiteCredentialResolver | undefined> {
  if (!env.WEBRUN_SITE_SECRETS_FILE) return undefined;
  const { given: file, path, shown } = userPath(env.WEBRUN_SITE_SECRETS_FILE, folder);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`WEBRUN_SITE_SECRETS_FILE: cannot read ${shown}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, false);
  }
  let contents: unknown;
  try {
    contents = JSON.parse(withoutBom(text));
  } catch {
    contents = undefined;
  }
  if (contents === null || typeof contents !== 'object' || Array.isArray(contents)) {
    throw new UsageError(`WEBRUN_SITE_SECRETS_FILE: ${file} must hold a JSON object of secrets by name, e.g. {"webrun-sfn/example":{"username":"...","password":"..."}}`, false);
  }
  return fileCredentials(contents as Record<string, unknown>, file);
}

/**
 * Locally, site logins come from WEBRUN_SITE_SECRETS_FILE only: a task that names one (`tasks[i].secrets`) cannot
 * be sent without that file, so such an input is refused before any session opens (deployed, Secrets Manager is
 * always there). `what` names the input in the message.
 */
export function requireSiteSecretsSource(input: unknown, source: SiteCredentialResolver | undefined, what: string): void {
  if (source) return;
  // Read before validation (the run validates), through the input's types: a renamed field fails to compile here.
  const tasks = (isPlainObject(input) && Array.isArray(input.tasks) ? input.tasks : []) as Array<Partial<WorkflowTask> | null>;
  for (const [i, task] of tasks.entries()) {
    const refs: Array<Partial<SiteCredentialRef> | null> = Array.isArray(task?.secrets) ? task.secrets : [];
    const named = refs.findIndex((ref) => typeof ref?.secret === 'string');
    if (named >= 0) {
      throw new UsageError(`${what}: tasks[${i}].secrets[${named}] names the site credentials secret ${refs[named]!.secret}, but WEBRUN_SITE_SECRETS_FILE is not set: locally, site logins are read from that JSON file (README, "Site credentials"); nothing was started`, false);
    }
  }
}

/** `--emulator-tasks FILE`: the task behaviours to queue on the built-in emulator, each checked, errors naming its place. */
export async function readEmulatorTasks(given: UserPath, io: CliIo): Promise<TaskBehaviour[]> {
  const file = given.given;
  let contents: unknown;
  try {
    contents = await readUserFile(given, (path) => readJsonInput(path, io.readStdin));
  } catch (err) {
    throw new UsageError(`--emulator-tasks: ${(err as Error).message}`, false);
  }
  if (!Array.isArray(contents)) throw new UsageError(`--emulator-tasks: ${file} must hold a JSON array of task behaviours (docs/EMULATOR.md)`, false);
  return contents.map((behaviour, i) => {
    try {
      return validateTaskBehaviour(behaviour);
    } catch (err) {
      throw new UsageError(`--emulator-tasks: ${file} [${i}]: ${(err as Error).message}`, false);
    }
  });
}
