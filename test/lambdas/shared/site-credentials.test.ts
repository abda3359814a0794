import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../lambdas/shared/errors';
import { fileCredentials, noCredentials, parseCredentialFields, resolveSiteCredentials, secretsManagerCredentials } from '../../../lambdas/shared/site-credentials';
import { awsError, caught } from '../../helpers/errors';

const ACCOUNT_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:';
const SHOP = 'webrun-sfn/shop';
const SHOP_ARN = `${ACCOUNT_ARN}${SHOP}-AbCdEf`;
/** A recognisable password: no error message may ever contain it. */
const PASSWORD = 'hunter2-Tr0ub4dor&3-correct-horse';
const FIELDS = { username: 'ada@example.com', password: PASSWORD };
/** The API key's secret, as the stack passes it in WEBRUN_SECRET_ARN (a complete ARN). */
const API_KEY_ARN = `${ACCOUNT_ARN}webrun-sfn/api-key-QwErTy`;
/** The same secret as an imported secret's partial ARN (no 6-character suffix). */
const API_KEY_PARTIAL_ARN = `${ACCOUNT_ARN}webrun-sfn/api-key`;
const API_KEY = 'wr-live-5e0c7a19b3d24f68';

const sm = mockClient(SecretsManagerClient);
beforeEach(() => {
  sm.reset();
});


/** A ConfigError whose message, stack and serialization never contain `hidden`. */
function expectConfigErrorWithout(err: Error, ...hidden: string[]): void {
  expect(err).toBeInstanceOf(ConfigError);
  expect(err.name).toBe('Webrun.ConfigError');
  for (const h of hidden) {
    expect(err.message).not.toContain(h);
    expect(String(err.stack)).not.toContain(h);
    expect(JSON.stringify(err)).not.toContain(h);
  }
}

function resolver(apiKeySecretArn: string | undefined = API_KEY_ARN) {
  return secretsManagerCredentials(new SecretsManagerClient({ region: 'us-east-1' }), apiKeySecretArn);
}
const noApiKeyResolver = () => secretsManagerCredentials(new SecretsManagerClient({ region: 'us-east-1' }), undefined);

describe('secretsManagerCredentials', () => {
  it('returns the secret JSON fields, asking GetSecretValue for exactly the reference', async () => {
    sm.on(GetSecretValueCommand).resolves({ ARN: SHOP_ARN, Name: SHOP, SecretString: JSON.stringify(FIELDS) });
    await expect(resolver()(SHOP)).resolves.toStrictEqual(FIELDS);
    const calls = sm.commandCalls(GetSecretValueCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0].args[0].input).toStrictEqual({ SecretId: SHOP });
  });

  it('passes an ARN reference through unchanged as the SecretId', async () => {
    sm.on(GetSecretValueCommand, { SecretId: SHOP_ARN }).resolves({ ARN: SHOP_ARN, SecretString: JSON.stringify(FIELDS) });
    await expect(resolver()(SHOP_ARN)).resolves.toStrictEqual(FIELDS);
    expect(sm.commandCalls(GetSecretValueCommand)[0].args[0].input).toStrictEqual({ SecretId: SHOP_ARN });
  });

  it('keeps every string field as stored (not only username/password)', async () => {
    const fields = { email: 'ada@example.com', pin: '0042', otpSeed: 'JBSWY3DPEHPK3PXP' };
    sm.on(GetSecretValueCommand).resolves({ ARN: SHOP_ARN, SecretString: JSON.stringify(fields) });
    await expect(resolver()(SHOP)).resolves.toStrictEqual(fields);
  });

  it('is not cached: two resolutions read the secret twice and pick up a changed value', async () => {
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ ARN: SHOP_ARN, SecretString: JSON.stringify(FIELDS) })
      .resolves({ ARN: SHOP_ARN, SecretString: JSON.stringify({ ...FIELDS, password: 'rotated-pw-0001' }) });
    const resolve = resolver();
    await expect(resolve(SHOP)).resolves.toStrictEqual(FIELDS);
    await expect(resolve(SHOP)).resolves.toStrictEqual({ ...FIELDS, password: 'rotated-pw-0001' });
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it.each([
    ['ResourceNotFoundException', "Secrets Manager can't find the specified secret.", /does not exist/],
    ['AccessDeniedException', 'User is not authorized to perform secretsmanager:GetSecretValue', /AccessDenied/],
    ['DecryptionFailure', 'Secrets Manager can not decrypt the protected secret text using the provided KMS key.', /decrypt/],
    // A deleted secret is scheduled for deletion (a recovery window), and unreadable with this name.
    ['InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion.", /scheduled for deletion/],
  ])('%s → Webrun.ConfigError naming the reference', async (name, message, pattern) => {
    sm.on(GetSecretValueCommand).rejects(awsError(name, message));
    const err = await caught(resolver()(SHOP));
    expectConfigErrorWithout(err);
    expect(err.message).toContain(SHOP);
    expect(err.message).toMatch(pattern);
  });

  it('a ConfigError for an ARN reference names that ARN', async () => {
    sm.on(GetSecretValueCommand).rejects(awsError('ResourceNotFoundException', 'not found'));
    const err = await caught(resolver()(SHOP_ARN));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(SHOP_ARN);
  });

  it('a throttling error is rethrown unchanged (the Retry of the state machine handles it)', async () => {
    const throttled = awsError('ThrottlingException', 'Rate exceeded');
    sm.on(GetSecretValueCommand).rejects(throttled);
    const err = await caught(resolver()(SHOP));
    expect(err).not.toBeInstanceOf(ConfigError);
    expect(err.name).toBe('ThrottlingException');
    expect(err.message).toBe('Rate exceeded');
  });

  const badTexts: Array<[string, string | undefined]> = [
    ['not JSON (the bare password)', PASSWORD],
    ['broken JSON holding the password', `{"username":"ada","password":"${PASSWORD}"`],
    ['a JSON array', JSON.stringify([PASSWORD])],
    ['a JSON string', JSON.stringify(PASSWORD)],
    ['JSON null', 'null'],
    ['a non-string value', JSON.stringify({ username: PASSWORD, password: 12345 })],
    ['a nested object value', JSON.stringify({ username: 'ada', password: { value: PASSWORD } })],
    ['a null value', JSON.stringify({ username: PASSWORD, password: null })],
    ['an empty object', '{}'],
    ['an empty string', ''],
    ['no SecretString (a binary secret)', undefined],
  ];
  it.each(badTexts)('secret text that is %s → ConfigError naming the reference, never containing the text', async (_name, text) => {
    sm.on(GetSecretValueCommand).resolves({ ARN: SHOP_ARN, ...(text === undefined ? { SecretBinary: new Uint8Array([1, 2]) } : { SecretString: text }) });
    const err = await caught(resolver()(SHOP));
    expectConfigErrorWithout(err, PASSWORD);
    expect(err.message).toContain(SHOP);
  });

  describe("refuses the API key's own secret", () => {
    it('when the answer ARN equals the configured ARN (named by name under the prefix)', async () => {
      sm.on(GetSecretValueCommand).resolves({ ARN: API_KEY_ARN, Name: 'webrun-sfn/api-key', SecretString: JSON.stringify({ apiKey: API_KEY }) });
      const err = await caught(resolver(API_KEY_ARN)('webrun-sfn/api-key'));
      expectConfigErrorWithout(err, API_KEY);
      expect(err.message).toContain('webrun-sfn/api-key');
      expect(err.message).toMatch(/API key/);
    });

    it('when named by its full ARN', async () => {
      sm.on(GetSecretValueCommand).resolves({ ARN: API_KEY_ARN, SecretString: JSON.stringify({ username: 'x', password: API_KEY }) });
      const err = await caught(resolver(API_KEY_ARN)(API_KEY_ARN));
      expectConfigErrorWithout(err, API_KEY);
      expect(err.message).toContain(API_KEY_ARN);
    });

    it('when configured by a partial ARN and the answer carries the "-AbCdEf" suffix', async () => {
      sm.on(GetSecretValueCommand).resolves({ ARN: `${API_KEY_PARTIAL_ARN}-AbCdEf`, SecretString: JSON.stringify({ username: 'x', password: API_KEY }) });
      const err = await caught(resolver(API_KEY_PARTIAL_ARN)('webrun-sfn/api-key'));
      expectConfigErrorWithout(err, API_KEY);
      expect(err.message).toContain('webrun-sfn/api-key');
    });

    it('even when the secret holds valid login fields (the check is by ARN, not content)', async () => {
      sm.on(GetSecretValueCommand).resolves({ ARN: API_KEY_ARN, SecretString: JSON.stringify(FIELDS) });
      const err = await caught(resolver(API_KEY_ARN)('webrun-sfn/api-key'));
      expectConfigErrorWithout(err, PASSWORD);
    });

    it('but accepts another secret with a similar name and a different ARN', async () => {
      const similar = `${ACCOUNT_ARN}webrun-sfn/api-keys-ZxCvBn`;
      sm.on(GetSecretValueCommand).resolves({ ARN: similar, SecretString: JSON.stringify(FIELDS) });
      await expect(resolver(API_KEY_ARN)('webrun-sfn/api-keys')).resolves.toStrictEqual(FIELDS);
      await expect(resolver(API_KEY_PARTIAL_ARN)('webrun-sfn/api-keys')).resolves.toStrictEqual(FIELDS);
      // the configured full ARN is a prefix of nothing else either
      sm.on(GetSecretValueCommand).resolves({ ARN: `${ACCOUNT_ARN}webrun-sfn/api-key-QwErTyU-123456`, SecretString: JSON.stringify(FIELDS) });
      await expect(resolver(API_KEY_ARN)('webrun-sfn/api-key-QwErTyU')).resolves.toStrictEqual(FIELDS);
    });

    it('configured by a partial ARN, refuses only that secret, not a longer name that starts like it', async () => {
      sm.on(GetSecretValueCommand).resolves({ ARN: `${API_KEY_PARTIAL_ARN}-shop-XyZ123`, SecretString: JSON.stringify(FIELDS) });
      await expect(resolver(API_KEY_PARTIAL_ARN)('webrun-sfn/api-key-shop')).resolves.toStrictEqual(FIELDS);
    });

    it('without a configured API key secret, nothing is refused on that ground', async () => {
      sm.on(GetSecretValueCommand).resolves({ ARN: API_KEY_ARN, SecretString: JSON.stringify(FIELDS) });
      await expect(noApiKeyResolver()('webrun-sfn/api-key')).resolves.toStrictEqual(FIELDS);
    });
  });
});

describe('parseCredentialFields', () => {
  it('returns a JSON object of strings as is', () => {
    expect(parseCredentialFields(JSON.stringify(FIELDS), SHOP)).toStrictEqual(FIELDS);
  });

  it('refuses anything else with a ConfigError naming the reference and not the text', () => {
    for (const text of [PASSWORD, `[${JSON.stringify(PASSWORD)}]`, JSON.stringify({ password: PASSWORD, tries: 3 }), '{}', undefined]) {
      let err: unknown;
      try {
        parseCredentialFields(text, SHOP);
      } catch (e) {
        err = e;
      }
      expectConfigErrorWithout(err as Error, PASSWORD);
      expect((err as Error).message).toContain(SHOP);
    }
  });
});

describe('fileCredentials', () => {
  const SOURCE = '/home/ada/site-secrets.json';
  const contents = { [SHOP]: FIELDS, 'webrun-sfn/bank': { login: 'ada', pin: '9876' } };

  it('finds a secret by its name', async () => {
    const resolve = fileCredentials(contents, SOURCE);
    await expect(resolve(SHOP)).resolves.toStrictEqual(FIELDS);
    await expect(resolve('webrun-sfn/bank')).resolves.toStrictEqual({ login: 'ada', pin: '9876' });
  });

  it('finds a secret by an ARN reference, looking up the name inside the ARN', async () => {
    await expect(fileCredentials(contents, SOURCE)(`${ACCOUNT_ARN}${SHOP}`)).resolves.toStrictEqual(FIELDS);
    // a name that itself ends like a suffix is found when the file is keyed by it
    await expect(fileCredentials({ [`${SHOP}-AbCdEf`]: FIELDS }, SOURCE)(SHOP_ARN)).resolves.toStrictEqual(FIELDS);
  });

  // A complete ARN ends with the 6-character suffix Secrets Manager adds; the file is keyed by the plain name.
  it('finds a secret by its complete ARN (with the "-AbCdEf" suffix) under its plain name', async () => {
    await expect(fileCredentials(contents, SOURCE)(SHOP_ARN)).resolves.toStrictEqual(FIELDS);
  });

  it('a missing secret → ConfigError naming it and the source file, without any value', async () => {
    const err = await caught(fileCredentials(contents, SOURCE)('webrun-sfn/mail'));
    expectConfigErrorWithout(err, PASSWORD, 'ada@example.com', '9876');
    expect(err.message).toContain('webrun-sfn/mail');
    expect(err.message).toContain(SOURCE);
  });

  it('a missing ARN reference names the secret and the source file', async () => {
    const err = await caught(fileCredentials(contents, SOURCE)(`${ACCOUNT_ARN}webrun-sfn/mail`));
    expectConfigErrorWithout(err, PASSWORD);
    expect(err.message).toContain('webrun-sfn/mail');
    expect(err.message).toContain(SOURCE);
  });

  it('does not take inherited properties for secrets', async () => {
    const err = await caught(fileCredentials(contents, SOURCE)('toString'));
    expect(err).toBeInstanceOf(ConfigError);
  });

  it.each([
    ['a string', PASSWORD],
    ['an array', [PASSWORD]],
    ['an object with a number', { username: PASSWORD, password: 1234 }],
    ['an empty object', {}],
    ['null', null],
  ])('an entry that is %s → ConfigError without the value', async (_name, entry) => {
    const err = await caught(fileCredentials({ [SHOP]: entry }, SOURCE)(SHOP));
    expectConfigErrorWithout(err, PASSWORD);
    expect(err.message).toContain(SHOP);
  });
});

describe('noCredentials', () => {
  it('→ ConfigError naming the reference and WEBRUN_SITE_SECRETS_FILE', async () => {
    const err = await caught(noCredentials(SHOP));
    expectConfigErrorWithout(err);
    expect(err.message).toContain(SHOP);
    expect(err.message).toContain('WEBRUN_SITE_SECRETS_FILE');
  });
});

describe('resolveSiteCredentials', () => {
  it('resolves every reference in order, keeping each match with its fields', async () => {
    const order: string[] = [];
    const resolve = vi.fn(async (ref: string) => {
      order.push(ref);
      return { username: `user-of-${ref}`, password: `${PASSWORD}-${ref}` };
    });
    const refs = [
      { match: '*.shop.example.com', secret: 'webrun-sfn/shop' },
      { match: 'bank.example.com', secret: SHOP_ARN },
      { match: 'mail.example.com', secret: 'webrun-sfn/mail' },
    ];
    await expect(resolveSiteCredentials(refs, resolve)).resolves.toStrictEqual(
      refs.map((r) => ({ match: r.match, fields: { username: `user-of-${r.secret}`, password: `${PASSWORD}-${r.secret}` } })),
    );
    expect(order).toEqual(refs.map((r) => r.secret));
    expect(resolve).toHaveBeenCalledTimes(3);
  });

  it('resolves one at a time: the next read starts after the previous one ended', async () => {
    let running = 0;
    let maxRunning = 0;
    const resolve = async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return { password: PASSWORD };
    };
    await resolveSiteCredentials([{ match: 'a.com', secret: 'webrun-sfn/a' }, { match: 'b.com', secret: 'webrun-sfn/b' }], resolve);
    expect(maxRunning).toBe(1);
  });

  it('an empty list resolves nothing', async () => {
    const resolve = vi.fn(noCredentials);
    await expect(resolveSiteCredentials([], resolve)).resolves.toStrictEqual([]);
    expect(resolve).not.toHaveBeenCalled();
  });

  it('stops at the first failure and rejects with that error', async () => {
    const failure = new ConfigError('The site credentials secret webrun-sfn/b does not exist.');
    const resolve = vi.fn(async (ref: string) => {
      if (ref === 'webrun-sfn/b') throw failure;
      return { password: PASSWORD };
    });
    const refs = ['a', 'b', 'c'].map((x) => ({ match: `${x}.com`, secret: `webrun-sfn/${x}` }));
    await expect(resolveSiteCredentials(refs, resolve)).rejects.toBe(failure);
    expect(resolve.mock.calls.map((c) => c[0])).toEqual(['webrun-sfn/a', 'webrun-sfn/b']);
  });
});
