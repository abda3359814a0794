import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MIN_CUT_PREFIX_CHARS, redactDeep, redactOutcome, redactText } from '../../../lambdas/shared/redact';
import { clipped } from '../../../lambdas/shared/webrun-client';

// A password with the characters JSON escapes, as a site may well require.
const PASSWORD = 'PW-9f3kQ"x\\z-SECRETPW';
const USERNAME = 'ada.zz91@example.com';
const SECRETS = [USERNAME, PASSWORD];

/** Python's json.dumps (ensure_ascii): JSON-escaped, and every character outside printable ASCII as \uxxxx. */
const pythonJson = (s: string) => JSON.stringify(s).slice(1, -1).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

describe('encoded copies of a secret', () => {
  it('a structured answer whose message is the JSON text of its output is redacted in both, and stays that JSON text', () => {
    const output = { orders: [], loggedInAs: USERNAME, note: `password was ${PASSWORD}` };
    const data = redactDeep({ message: JSON.stringify(output), output }, SECRETS);
    expect(data.output).toEqual({ orders: [], loggedInAs: '[redacted]', note: 'password was [redacted]' });
    expect(JSON.parse(data.message)).toEqual(data.output);
    expect(JSON.stringify(data)).not.toContain('9f3kQ');
  });

  it('an error body that quotes the request as JSON', () => {
    const body = `403 Forbidden: ${JSON.stringify({ secrets: [{ fields: { username: USERNAME, password: PASSWORD } }] })}`;
    expect(redactText(body, SECRETS)).toBe('403 Forbidden: {"secrets":[{"fields":{"username":"[redacted]","password":"[redacted]"}}]}');
  });

  it.each([
    ['encodeURIComponent', `https://shop.example.com/login?email=${encodeURIComponent(USERNAME)}&pw=${encodeURIComponent(PASSWORD)}`],
    ['form encoding', `https://shop.example.com/login?${new URLSearchParams({ email: USERNAME, pw: PASSWORD })}`],
    ['lowercase hex', `https://shop.example.com/login?email=ada.zz91%40example.com&pw=PW-9f3kQ%22x%5cz-SECRETPW`],
  ])('a URL with them %s', (_name, url) => {
    expect(redactText(`Visited ${url}`, SECRETS)).toBe('Visited https://shop.example.com/login?email=[redacted]&pw=[redacted]');
  });

  it('a passphrase with spaces, written with "+" for them, and non-ASCII written as \\u escapes', () => {
    const phrase = 'correct horse / Bätterie ✓';
    expect(redactText(`q=${encodeURIComponent(phrase).replace(/%20/g, '+')}`, [phrase])).toBe('q=[redacted]');
    expect(redactText(`{"pw": "${pythonJson(phrase)}"}`, [phrase])).toBe('{"pw": "[redacted]"}');
    expect(redactText('{"pw":"correct horse \\/ B\\u00E4tterie \\u2713"}', [phrase])).toBe('{"pw":"[redacted]"}');
    expect(redactText(`{"pw":"${JSON.stringify(phrase).slice(1, -1).replace(/\//g, '\\/')}"}`, [phrase])).toBe('{"pw":"[redacted]"}');
  });

  it('a longer form is hidden whole, not half replaced by a shorter form or value', () => {
    // The JSON form of PASSWORD contains `z-SECRETPW`; a second secret `x\z` overlaps its escaped middle.
    expect(redactText(`"${JSON.stringify(PASSWORD).slice(1, -1)}"`, [PASSWORD, 'z-SECRETPW', 'x\\z'])).toBe('"[redacted]"');
    expect(redactText(`${PASSWORD}${PASSWORD}`, [PASSWORD])).toBe('[redacted][redacted]');
  });

  it('property: no written form of a secret survives outside a mark, whatever the text around it', () => {
    const encodings: Array<(s: string) => string> = [
      (s) => s,
      (s) => JSON.stringify(s).slice(1, -1),
      pythonJson,
      (s) => encodeURIComponent(s),
      (s) => encodeURIComponent(s).replace(/%20/g, '+'),
    ];
    // encodeURIComponent refuses a lone surrogate: such a secret has no URL form to look for.
    const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
    const text = fc.string({ unit: 'binary', maxLength: 12 }).filter(wellFormed);
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', minLength: 4, maxLength: 16 }).filter(wellFormed),
        text,
        text,
        fc.integer({ min: 0, max: encodings.length - 1 }),
        (secret, before, after, e) => {
          const written = encodings[e](secret);
          const redacted = redactText(before + written + after, [secret]);
          for (const piece of redacted.split('[redacted]')) expect(piece).not.toContain(written);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('an outcome keeps its own fields; only what the API said is redacted', () => {
    const failed = redactOutcome({ kind: 'failed', taskId: 't1', reason: `bad pw=${encodeURIComponent(PASSWORD)}` }, SECRETS);
    expect(failed).toEqual({ kind: 'failed', taskId: 't1', reason: 'bad pw=[redacted]' });
  });
});

describe('short values', () => {
  const LONG = 'Pw-long-SECRETPW';

  it('a short secret field does not damage a later result: keys and words that merely contain it are kept', () => {
    const data = { message: '{"status":"ok","users":3}', output: { status: 'ok', users: 3, focus: 'museum tours' } };
    expect(redactDeep(data, [LONG, 'us', USERNAME])).toEqual(data);
  });

  it('is still hidden where it stands as a whole word, in any written form', () => {
    expect(redactText('shipped to us; status: ok', ['us'])).toBe('shipped to [redacted]; status: ok');
    expect(redactText('{"country":"us","users":3}', ['us'])).toBe('{"country":"[redacted]","users":3}');
    expect(redactText('PIN 123 typed; order 51234, 123x, x123, _123', ['123'])).toBe('PIN [redacted] typed; order 51234, 123x, x123, _123');
    expect(redactText('sent a"b and a%22b', ['a"b'])).toBe('sent [redacted] and [redacted]');
    expect(redactText('é and éa and 😀é', ['é'])).toBe('[redacted] and éa and 😀[redacted]');
  });

  it('a long value in a key is hidden (an agent may key a result by the account); keys that become the same are numbered', () => {
    expect(redactDeep({ accounts: { [USERNAME]: { orders: 2 }, 'bob@example.com': { orders: 1 } } }, SECRETS)).toEqual({
      accounts: { '[redacted]': { orders: 2 }, 'bob@example.com': { orders: 1 } },
    });
    expect(redactDeep({ [USERNAME]: 1, [PASSWORD]: 2, '[redacted] (2)': 3 }, SECRETS)).toEqual({ '[redacted]': 1, '[redacted] (2)': 3, '[redacted] (3)': 2 });
  });

  it('property: values under 4 characters never change a key, whatever the value', () => {
    const keyPaths = (v: unknown, at = ''): string[] =>
      v !== null && typeof v === 'object' ? Object.entries(v).flatMap(([k, x]) => [`${at}/${k}`, ...keyPaths(x, `${at}/${k}`)]) : [];
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(fc.string({ minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }), (value, secrets) => {
        expect(keyPaths(redactDeep(value, secrets))).toEqual(keyPaths(value));
      }),
      { numRuns: 300 },
    );
  });
});

// The client cuts a long question or reason before a later step redacts it of what it knows only then (an earlier
// task's login, a rule's answer from a secret).
describe('a text cut where a secret was', () => {
  const MAX_API_TEXT_CHARS = 2_000; // where the client cuts
  const cut = (text: string) => clipped(text, MAX_API_TEXT_CHARS);
  const filler = (n: number) => `${'y'.repeat(n)} typed `;

  it('a failure reason or question cut inside a secret keeps none of its start', () => {
    const text = `${filler(1985)}${PASSWORD} as ${USERNAME}`;
    expect(cut(text)).toContain('PW-9f3k');
    for (const kind of ['failed', 'guardrail'] as const) {
      const outcome = kind === 'failed' ? { kind, reason: cut(text) } : { kind, question: cut(text) };
      const redacted = redactOutcome(outcome, SECRETS) as { reason?: string; question?: string };
      expect(redacted.reason ?? redacted.question).toBe(`${filler(1985)}[redacted]…`);
    }
  });

  it('a text that was not cut keeps its end, even when it ends like a secret starts', () => {
    const outcome = { kind: 'failed' as const, reason: 'Stopped at PW…' };
    expect(redactOutcome(outcome, SECRETS)).toEqual(outcome);
  });

  it('property: whatever the secret and wherever the cut falls in it, no start of it of 4 characters or more is kept', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme-ascii', minLength: 5, maxLength: 40 }).filter((s) => !/^[y ]/.test(s)),
        fc.integer({ min: MIN_CUT_PREFIX_CHARS, max: 39 }),
        (secret, kept) => {
          fc.pre(kept < secret.length);
          // Only "y" and " " before it, which the secret does not start with: what is hidden is its start only.
          const before = `${'y'.repeat(MAX_API_TEXT_CHARS - 2 - kept)} `;
          const reason = cut(`${before}${secret} and more`);
          expect(reason.slice(before.length, -1)).toBe(secret.slice(0, kept));
          expect(redactOutcome({ kind: 'failed', reason }, [secret])).toEqual({ kind: 'failed', reason: `${before}[redacted]…` });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the end of an ordinary word at the cut is kept when it is only a short start of a secret ("plea|se" against "secret…")', () => {
    const before = `${'y'.repeat(MAX_API_TEXT_CHARS - 2 - 'said: please'.length)} `;
    const reason = cut(`${before}said: please tell me more`);
    expect(reason.endsWith('said: please…')).toBe(true);
    expect(redactOutcome({ kind: 'failed', reason }, ['secretpassword1'])).toEqual({ kind: 'failed', reason });
  });

  it('a short value is not hidden inside a region, a language tag or a host name, only where it stands alone', () => {
    expect(redactDeep({ region: 'us-east-1', lang: 'en-us', host: 'us.example.com', path: 'a/us', note: 'ships to us.' }, ['us']))
      .toEqual({ region: 'us-east-1', lang: 'en-us', host: 'us.example.com', path: 'a/us', note: 'ships to [redacted].' });
  });
});
