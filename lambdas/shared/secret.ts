/**
 * Reads the webrun API key from Secrets Manager: once per warm Lambda (cached for `ttlMs`), never logged, never
 * returned anywhere but to the webrun client. The secret holds either the bare key or JSON `{ "apiKey": "..." }`.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { API_KEY_FIELD } from './contract';
import { ConfigError } from './errors';

export interface SecretReaderOptions {
  secretId: string;
  client?: SecretsManagerClient;
  /** How long a read value is reused. @default 300000 (5 minutes, so a rotated key is picked up soon) */
  ttlMs?: number;
  now?: () => number;
}

/** Extracts the key from the secret's text: a bare key, or a JSON object with an `apiKey` field. */
export function apiKeyFromSecretString(text: string | undefined, secretId: string): string {
  const howToSet = `put the key with: aws secretsmanager put-secret-value --secret-id ${secretId} --secret-string '{"${API_KEY_FIELD}":"<your webrun key>"}'`;
  const trimmed = (text ?? '').trim();
  let key = trimmed;
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new ConfigError(`The secret ${secretId} holds text that looks like JSON but does not parse; ${howToSet}.`);
    }
    const value = (parsed as Record<string, unknown>)[API_KEY_FIELD];
    key = typeof value === 'string' ? value.trim() : '';
  }
  if (key === '') throw new ConfigError(`The secret ${secretId} holds no webrun API key yet; ${howToSet}.`);
  return key;
}

/** Returns a function that resolves the API key, reading Secrets Manager at most once per `ttlMs`. */
export function secretApiKeyReader(options: SecretReaderOptions): () => Promise<string> {
  const client = options.client ?? new SecretsManagerClient({});
  const ttlMs = options.ttlMs ?? 300_000;
  const now = options.now ?? Date.now;
  let cached: { key: string; expiresAt: number } | undefined;
  return async () => {
    if (cached && now() < cached.expiresAt) return cached.key;
    let text: string | undefined;
    try {
      const answer = await client.send(new GetSecretValueCommand({ SecretId: options.secretId }));
      text = answer.SecretString;
    } catch (err) {
      const name = (err as { name?: string }).name ?? 'Error';
      if (name === 'ResourceNotFoundException') throw new ConfigError(`The secret ${options.secretId} does not exist.`);
      if (name === 'AccessDeniedException') throw new ConfigError(`This function may not read the secret ${options.secretId} (AccessDenied).`);
      if (name === 'DecryptionFailure') throw new ConfigError(`The secret ${options.secretId} could not be decrypted with its KMS key.`);
      throw err;
    }
    const key = apiKeyFromSecretString(text, options.secretId);
    cached = { key, expiresAt: now() + ttlMs };
    return key;
  };
}
