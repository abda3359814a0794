import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../lambdas/shared/errors';
import { apiKeyFromSecretString, secretApiKeyReader } from '../../../lambdas/shared/secret';
import { awsError, caught } from '../../helpers/errors';

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun/api-key-AbCdEf';
const KEY = 'wr-live-5e0c7a19b3d24f68';

const sm = mockClient(SecretsManagerClient);
beforeEach(() => {
  sm.reset();
});


/** A reader over a fresh Powertools provider (its own cache). Time is Date's, faked where a test moves it. */
function reader(maxAgeSeconds?: number) {
  return secretApiKeyReader({ secretId: ARN, provider: new SecretsProvider({ awsSdkV3Client: new SecretsManagerClient({ region: 'us-east-1' }) }), maxAgeSeconds });
}
afterEach(() => {
  vi.useRealTimers();
});
const clock = (start: number) => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(start);
  return (ms: number) => vi.setSystemTime(start + ms);
};

describe('secretApiKeyReader', () => {
  it('reads a bare key (trimmed), asking for the configured ARN', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: `  ${KEY}\n` });
    await expect(reader()()).resolves.toBe(KEY);
    const calls = sm.commandCalls(GetSecretValueCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0].args[0].input).toEqual({ SecretId: ARN });
  });

  it('reads the { "apiKey": ... } form', async () => {
    sm.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: JSON.stringify({ apiKey: KEY, note: 'rotated 2025-01' }) });
    await expect(reader()()).resolves.toBe(KEY);
  });

  it('caches the key within the TTL: one GetSecretValue for many calls', async () => {
    const at = clock(1_000_000);
    sm.on(GetSecretValueCommand).resolves({ SecretString: KEY });
    const read = reader(60);
    await read();
    at(30_000);
    await read();
    at(59_000);
    await expect(read()).resolves.toBe(KEY);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('re-reads after the TTL and picks up a rotated key', async () => {
    const at = clock(1_000_000);
    sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: KEY }).resolves({ SecretString: JSON.stringify({ apiKey: 'wr-rotated-key-0001' }) });
    const read = reader(60);
    await expect(read()).resolves.toBe(KEY);
    at(61_000);
    await expect(read()).resolves.toBe('wr-rotated-key-0001');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('defaults to a 5-minute TTL', async () => {
    const at = clock(1_000_000);
    sm.on(GetSecretValueCommand).resolves({ SecretString: KEY });
    const read = reader();
    await read();
    at(299_000);
    await read();
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    at(301_000);
    await read();
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('does not cache a failure: the next call reads again', async () => {
    sm.on(GetSecretValueCommand).rejectsOnce(awsError('AccessDeniedException', 'no')).resolves({ SecretString: KEY });
    const read = reader();
    await expect(read()).rejects.toBeInstanceOf(ConfigError);
    await expect(read()).resolves.toBe(KEY);
  });

  it('ResourceNotFoundException → Webrun.ConfigError naming the secret', async () => {
    sm.on(GetSecretValueCommand).rejects(awsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret."));
    const err = await caught(reader()());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.name).toBe('Webrun.ConfigError');
    expect(err.message).toContain(ARN);
    expect(err.message).toMatch(/does not exist/);
  });

  it('AccessDeniedException → Webrun.ConfigError naming the secret', async () => {
    sm.on(GetSecretValueCommand).rejects(awsError('AccessDeniedException', 'User is not authorized to perform secretsmanager:GetSecretValue'));
    const err = await caught(reader()());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(ARN);
    expect(err.message).toMatch(/AccessDenied/);
  });

  it('a secret scheduled for deletion (InvalidRequestException) → Webrun.ConfigError naming the secret', async () => {
    sm.on(GetSecretValueCommand).rejects(awsError('InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion."));
    const err = await caught(reader()());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`The secret ${ARN} cannot be read (is it scheduled for deletion?).`);
  });

  it('a key holding a character an HTTP header cannot carry → ConfigError, not a network failure retried in vain, and not repeated', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: 'wr-live-abc\u200bdef' }) });
    const err = await caught(reader()());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('a character an HTTP header cannot carry');
    expect(err.message).not.toContain('wr-live-abc');
  });

  it('other AWS errors (throttling) pass through unchanged so they can be retried', async () => {
    const throttled = awsError('ThrottlingException', 'Rate exceeded');
    sm.on(GetSecretValueCommand).rejects(throttled);
    const err = await caught(reader()());
    expect(err).not.toBeInstanceOf(ConfigError);
    expect(err.name).toBe('ThrottlingException');
  });

  it('the empty placeholder { "apiKey": "", "placeholder": ... } → ConfigError telling how to put the key', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: '', placeholder: 'set me with put-secret-value' }) });
    const err = await caught(reader()());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(ARN);
    expect(err.message).toContain(`aws secretsmanager put-secret-value --secret-id ${ARN}`);
    expect(err.message).toContain('"apiKey"');
  });

  it('a secret with no SecretString (binary) → ConfigError', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2, 3]) });
    await expect(reader()()).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('apiKeyFromSecretString', () => {
  it('accepts the two documented forms', () => {
    expect(apiKeyFromSecretString(KEY, ARN)).toBe(KEY);
    expect(apiKeyFromSecretString(`{"apiKey":" ${KEY} "}`, ARN)).toBe(KEY);
  });

  const bad: Array<[string, string | undefined]> = [
    ['undefined', undefined],
    ['empty', ''],
    ['whitespace', '  \n'],
    ['empty apiKey', '{"apiKey":""}'],
    ['whitespace apiKey', '{"apiKey":"   "}'],
    ['numeric apiKey', '{"apiKey":12345}'],
    ['another field name', `{"key":"${KEY}"}`],
    ['broken JSON holding the key', `{"apiKey":"${KEY}"`],
    ['broken JSON with a trailing comma', `{"apiKey":"${KEY}",}`],
  ];
  it.each(bad)('%s → ConfigError that never contains the secret text', (_name, text) => {
    let err: unknown;
    try {
      apiKeyFromSecretString(text, ARN);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.message).toContain(ARN);
    expect(e.message).toContain('put-secret-value');
    expect(e.message).not.toContain(KEY);
    expect(String(e.stack)).not.toContain(KEY);
    expect(JSON.stringify(e)).not.toContain(KEY);
  });

  it('the key is not in any error the reader throws, even when the secret text is malformed', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: `{"apiKey": "${KEY}", oops}` });
    const err = await caught(reader()());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).not.toContain(KEY);
    expect(JSON.stringify(err)).not.toContain(KEY);
  });
});
