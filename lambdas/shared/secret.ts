/**
 * Reads the webrun API key from Secrets Manager (through Powertools Parameters, cached per warm Lambda), never
 * logged, never returned anywhere but to the webrun client. The secret holds either the bare key or JSON `{ "apiKey": "..." }`.
 */
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { API_KEY_FIELD } from './contract';
import { ConfigError } from './errors';
import { headerSafeKey } from './webrun-client';

export interface SecretReaderOptions {
  secretId: string;
  /** The Powertools Parameters provider that reads (and caches) it. @default one over a new SecretsManagerClient */
  provider?: Pick<SecretsProvider, 'get'>;
  /** How long a read value is reused, in seconds. @default 300 (5 minutes, so a rotated key is picked up soon) */
  maxAgeSeconds?: number;
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
  // It goes into an Authorization header (visible ASCII): a character pasted with it (a zero-width space, a line
  // break) would make every call fail as if the network had, and be retried in vain.
  if (!headerSafeKey(key)) throw new ConfigError(`The secret ${secretId} holds a key with a character an HTTP header cannot carry (a space, a line break or an invisible character pasted with it); ${howToSet}.`);
  return key;
}

/** The SDK error behind a Parameters error (it wraps what GetSecretValue threw). */
function sdkError(err: unknown): { name?: string } {
  const e = err as { name?: string; cause?: unknown };
  return (e?.name === 'GetParameterError' && e.cause ? e.cause : e) as { name?: string };
}

/**
 * Returns a function that resolves the API key through Powertools Parameters: read from Secrets Manager at most
 * once per `maxAgeSeconds` per warm container, never logged, handed only to the webrun client.
 */
export function secretApiKeyReader(options: SecretReaderOptions): (read?: { fresh?: boolean }) => Promise<string> {
  const provider = options.provider ?? new SecretsProvider({ awsSdkV3Client: new SecretsManagerClient({}) });
  const maxAge = options.maxAgeSeconds ?? 300;
  // `fresh`: past the cache (a 401 with the cached key, which may have been rotated since).
  return async ({ fresh = false } = {}) => {
    let text: unknown;
    try {
      text = await provider.get(options.secretId, fresh ? { maxAge, forceFetch: true } : { maxAge });
    } catch (err) {
      const cause = sdkError(err);
      if (cause.name === 'ResourceNotFoundException') throw new ConfigError(`The secret ${options.secretId} does not exist.`);
      if (cause.name === 'AccessDeniedException') throw new ConfigError(`This function may not read the secret ${options.secretId} (AccessDenied).`);
      if (cause.name === 'DecryptionFailure') throw new ConfigError(`The secret ${options.secretId} could not be decrypted with its KMS key.`);
      // Deleting a secret schedules its deletion (a recovery window): it is then unreadable, with this name.
      if (cause.name === 'InvalidRequestException') throw new ConfigError(`The secret ${options.secretId} cannot be read (is it scheduled for deletion?).`);
      // Anything else (throttling, network) as the SDK threw it, so the state machine's retry sees its name.
      throw cause;
    }
    if (typeof text !== 'string') throw new ConfigError(`The secret ${options.secretId} holds no text (a binary secret?): put the key as text.`);
    return apiKeyFromSecretString(text, options.secretId);
  };
}
