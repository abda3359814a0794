/**
 * Site credentials by reference. A task names, per site pattern, the Secrets Manager secret that holds the login
 * fields (`{ "match": "*.example.com", "secret": "webrun-sfn/example" }`); the send step resolves it at send time,
 * so the credentials never appear in execution input, state, history or logs. The webrun API receives them as
 * `secrets: [{ match, fields }]` and, per its docs, does not store them.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError } from './errors';
import { siteSecretName } from './input';
import type { SiteCredentialRef, SiteCredentials } from './types';

/** Looks up the login fields behind a secret reference (name or ARN). */
export type SiteCredentialResolver = (reference: string) => Promise<Record<string, string>>;

/** The suffix Secrets Manager appends to a secret's name in its complete ARN. */
const ARN_SUFFIX = /-[A-Za-z0-9]{6}$/;

/** Whether `arn` (complete, as GetSecretValue answers) is the secret `configured` names: complete or partial ARN. */
function isSameSecret(arn: string, configured: string): boolean {
  return arn === configured || (arn.startsWith(configured) && ARN_SUFFIX.test(arn) && arn.length === configured.length + 7);
}

/** Resolves every reference of a task, in order. */
export async function resolveSiteCredentials(refs: readonly SiteCredentialRef[], resolve: SiteCredentialResolver): Promise<SiteCredentials[]> {
  const resolved: SiteCredentials[] = [];
  for (const ref of refs) resolved.push({ match: ref.match, fields: await resolve(ref.secret) });
  return resolved;
}

/** Parses a secret's text into string fields. Messages name the reference, never the value. */
export function parseCredentialFields(text: string | undefined, reference: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text ?? '');
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`The site credentials secret ${reference} does not hold a JSON object of fields, e.g. {"username":"...","password":"..."}.`);
  }
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length === 0 || !entries.every(([, v]) => typeof v === 'string')) {
    throw new ConfigError(`The site credentials secret ${reference} must map field names to strings, e.g. {"username":"...","password":"..."}.`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** The Secrets Manager commands, loaded on first use: a local run reads its site credentials from a file. */
const secretsManagerCommands = () => import('@aws-sdk/client-secrets-manager');

/**
 * Resolves references from Secrets Manager (in Lambda). Not cached: a task's credentials are read when it is sent.
 * The API key's own secret is refused even if its name carries the site-credentials prefix.
 */
export function secretsManagerCredentials(client: SecretsManagerClient, apiKeySecretArn: string | undefined): SiteCredentialResolver {
  return async (reference) => {
    let answer;
    try {
      answer = await client.send(new (await secretsManagerCommands()).GetSecretValueCommand({ SecretId: reference }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'ResourceNotFoundException') throw new ConfigError(`The site credentials secret ${reference} does not exist.`);
      if (name === 'AccessDeniedException') throw new ConfigError(`This workflow may not read the site credentials secret ${reference} (AccessDenied).`);
      if (name === 'DecryptionFailure') throw new ConfigError(`The site credentials secret ${reference} could not be decrypted with its KMS key.`);
      // Deleting a secret schedules its deletion (a recovery window): it is then unreadable, with this name.
      if (name === 'InvalidRequestException') throw new ConfigError(`The site credentials secret ${reference} cannot be read (is it scheduled for deletion?).`);
      // Anything else (throttling, network) propagates as is; the SDK has already retried it.
      throw err;
    }
    if (apiKeySecretArn && answer.ARN && isSameSecret(answer.ARN, apiKeySecretArn)) {
      throw new ConfigError(`The site credentials secret ${reference} is the webrun API key's secret: it is never handed to the agent.`);
    }
    return parseCredentialFields(answer.SecretString, reference);
  };
}

/**
 * Resolves references from a local JSON file `{ "webrun-sfn/example": { "username": "...", ... } }`, keyed by
 * secret name (an ARN reference is looked up by the name inside it): the local runner's stand-in for Secrets
 * Manager, named by WEBRUN_SITE_SECRETS_FILE.
 */
export function fileCredentials(contents: Record<string, unknown>, source: string): SiteCredentialResolver {
  return async (reference) => {
    const name = siteSecretName(reference);
    // A complete ARN ends with the 6-character suffix Secrets Manager adds to the name.
    const key = [name, name.replace(ARN_SUFFIX, '')].find((k) => Object.hasOwn(contents, k));
    if (key === undefined) throw new ConfigError(`The site credentials secret ${name} is not in ${source}.`);
    return parseCredentialFields(JSON.stringify(contents[key]), key);
  };
}

/** Used when no source is configured: a task that names credentials fails clearly. */
export const noCredentials: SiteCredentialResolver = async (reference) => {
  throw new ConfigError(`The task names the site credentials secret ${reference}, but no credentials source is configured (locally: set WEBRUN_SITE_SECRETS_FILE).`);
};
