import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../lambdas/shared/errors';
import { decide, matches, secretAnswers, type Guardrails } from '../../../lambdas/shared/guardrails';
import { base32Decode, totp, totpCode } from '../../../lambdas/shared/totp';

describe('TOTP (RFC 6238)', () => {
  // RFC 6238 appendix B, SHA-1: the key is the ASCII "12345678901234567890", 8 digits.
  const SEED = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  it.each([
    [59, '94287082'],
    [1_111_111_109, '07081804'],
    [1_111_111_111, '14050471'],
    [1_234_567_890, '89005924'],
    [2_000_000_000, '69279037'],
    [20_000_000_000, '65353130'],
  ])('at T = %i s the code is %s', (seconds, code) => {
    expect(totpCode(base32Decode(SEED), seconds * 1000, 8)).toBe(code);
  });

  it('gives authenticator apps\' six digits: the last six of the eight', () => {
    expect(totp(SEED, 59_000)).toBe('287082');
    expect(totp(SEED.toLowerCase().replace(/(.{4})/g, '$1 '), 59_000)).toBe('287082');
  });

  it('changes every 30 seconds, not within them', () => {
    expect(totp(SEED, 60_000)).toBe(totp(SEED, 89_999));
    expect(totp(SEED, 90_000)).not.toBe(totp(SEED, 89_999));
  });

  it.each(['', '====', 'NOT-BASE32!', '0189'])('refuses the seed %j with a ConfigError that does not repeat it', (seed) => {
    let err: unknown;
    try {
      totp(seed, 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    if (seed.length > 2) expect((err as Error).message).not.toContain(seed);
  });
});

describe('matches', () => {
  it.each([
    ['confirm purchase', 'Please CONFIRM PURCHASE of 1 item?', true],
    ['confirm purchase', 'Confirm the purchase?', false],
    ['/verification code/i', 'Enter the Verification Code we sent', true],
    ['/verification code/', 'Enter the Verification Code we sent', false],
    ['/^which (account|profile)\\?$/i', 'Which profile?', true],
    ['/a.b/s', 'a\nb', true],
  ])('%j against %j → %s', (when, question, expected) => {
    expect(matches(when, question)).toBe(expected);
  });

  it('treats regex characters in a plain `when` as text', () => {
    expect(matches('price (USD)?', 'What price (USD)? is fine')).toBe(true);
    expect(matches('price (USD)?', 'What price USD is fine')).toBe(false);
  });

  // "/CODE/I" was a text rule for the literal "/CODE/I" while "/CODE/i" was a regex. The validator now refuses it
  // (input.test.ts); here, the runtime reads the same shape as a regex, never as text.
  it('reads /pattern/ with any letters after it as a regex, not as text', () => {
    expect(matches('/CODE/gi', 'Enter the code')).toBe(true);
    expect(() => matches('/CODE/I', 'Enter /CODE/I')).toThrow(SyntaxError);
  });

  it('matches any question that contains the text (property, fixed seed)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), fc.string(), (before, when, after) => {
        fc.pre(!/^\/.*\/[A-Za-z]*$/s.test(when)); // that would be a regex, not text
        expect(matches(when, `${before}${when}${after}`)).toBe(true);
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});

describe('a pattern that backtracks', () => {
  // Exponential on a question that ends without "?": ~55 ms at 30 characters, doubling with each one more.
  const SLOW = '/^(\\w+\\s?)+\\?$/';
  const QUESTION = 'Please enter the verification code that we have sent to your phone now!';

  it('ends the run with a reason instead of holding the step (a Lambda until its timeout, the local runner past Ctrl-C)', async () => {
    // Without the limit this call does not return for hours (the test's timeout would fail it).
    const d = await decide(QUESTION, { rules: [{ when: SLOW, answer: 'yes' }] }, undefined, [], async () => ({}));
    expect(d).toEqual({ kind: 'fail', why: expect.stringContaining(`the rule "${SLOW}" took more than 100 ms on the question`) });
  });

  it('leaves fast patterns as they were, flags included', () => {
    expect(matches('/^(\\w+\\s?)+\\?$/', 'Confirm the order?')).toBe(true);
    expect(matches('/CONFIRM/i', 'please confirm')).toBe(true);
    expect(matches('/^confirm$/m', 'line one\nconfirm')).toBe(true);
  });
});

describe('decide', () => {
  const noSecrets = vi.fn(async () => ({}));
  const secrets = (fields: Record<string, Record<string, string>>) => vi.fn(async (name: string) => fields[name] ?? {});

  it('takes the task\'s rule before the session\'s', async () => {
    const task: Guardrails = { rules: [{ when: 'purchase', answer: 'task says yes' }] };
    const session: Guardrails = { rules: [{ when: 'confirm', answer: 'session says no' }] };
    expect(await decide('Confirm purchase?', task, session, [], noSecrets)).toEqual({ kind: 'answer', text: 'task says yes', fromSecret: false });
    expect(await decide('Confirm delivery?', task, session, [], noSecrets)).toEqual({ kind: 'answer', text: 'session says no', fromSecret: false });
  });

  it('fails on a rule with action "fail", even when a person could be asked', async () => {
    const d = await decide('Solve the CAPTCHA', { rules: [{ when: 'captcha', action: 'fail' }] }, { ask: { timeoutSeconds: 60 } }, [], noSecrets);
    expect(d).toEqual({ kind: 'fail', why: 'a rule ends the run on "captcha"' });
  });

  it('asks a person when no rule matches and `ask` is set, with its timeout', async () => {
    expect(await decide('Which account?', { rules: [{ when: 'purchase', answer: 'yes' }] }, { ask: { timeoutSeconds: 120 } }, [], noSecrets)).toEqual({ kind: 'ask', timeoutSeconds: 120 });
  });

  it('fails without rules (the behaviour before guardrails could be answered), and says why when rules exist', async () => {
    expect(await decide('Anything?', undefined, undefined, [], noSecrets)).toEqual({ kind: 'fail' });
    expect(await decide('Anything?', undefined, { rules: [{ when: 'other', answer: 'x' }] }, [], noSecrets)).toEqual({ kind: 'fail', why: 'no rule answers it' });
  });

  it('stops answering after maxAnswers (default 5): a question that keeps coming back ends the run', async () => {
    const rules: Guardrails = { rules: [{ when: 'again', answer: 'yes' }] };
    const answered = (n: number) => Array.from({ length: n }, () => ({ question: 'again?', answeredBy: 'rule' as const }));
    expect((await decide('again?', rules, undefined, answered(4), noSecrets)).kind).toBe('answer');
    expect(await decide('again?', rules, undefined, answered(5), noSecrets)).toEqual({ kind: 'fail', why: 'the task was already answered 5 time(s) (maxAnswers 5)' });
    expect((await decide('again?', { ...rules, maxAnswers: 1 }, undefined, answered(1), noSecrets)).kind).toBe('fail');
    // A task's guardrails without maxAnswers take the session's.
    expect((await decide('again?', rules, { maxAnswers: 2 }, answered(2), noSecrets)).kind).toBe('fail');
  });

  it('answers from a secret\'s field, read when the question comes, and says the text is secret', async () => {
    const read = secrets({ 'webrun-sfn/shop': { pin: '4321' } });
    const d = await decide('Enter your PIN', undefined, { rules: [{ when: 'pin', answerFromSecret: { secret: 'webrun-sfn/shop', field: 'pin' } }] }, [], read);
    expect(d).toEqual({ kind: 'answer', text: '4321', fromSecret: true });
    expect(read).toHaveBeenCalledWith('webrun-sfn/shop');
  });

  it('turns a base32 seed into the current TOTP code with `totp: true`', async () => {
    const read = secrets({ 'webrun-sfn/shop': { otp: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' } });
    const rule = { when: '/verification code/i', answerFromSecret: { secret: 'webrun-sfn/shop', field: 'otp', totp: true } };
    expect(await decide('Enter the verification code', { rules: [rule] }, undefined, [], read, () => 59_000)).toEqual({ kind: 'answer', text: '287082', fromSecret: true });
  });

  it('fails naming the secret and the field (not a value) when the field is missing', async () => {
    const d = await decide('PIN?', { rules: [{ when: 'pin', answerFromSecret: { secret: 'webrun-sfn/shop', field: 'pin' } }] }, undefined, [], secrets({ 'webrun-sfn/shop': { other: 'hidden-value' } }));
    expect(d).toEqual({ kind: 'fail', why: 'the secret webrun-sfn/shop has no field "pin"' });
  });
});

describe('secretAnswers', () => {
  it('reads again the plain secret values that rules answered, never TOTP codes or text answers', async () => {
    const read = vi.fn(async () => ({ pin: '4321', otp: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' }));
    const session: Guardrails = {
      rules: [
        { when: 'pin', answerFromSecret: { secret: 'webrun-sfn/shop', field: 'pin' } },
        { when: 'code', answerFromSecret: { secret: 'webrun-sfn/shop', field: 'otp', totp: true } },
        { when: 'confirm', answer: 'yes' },
      ],
    };
    const answered = [
      { question: 'Your PIN?', answeredBy: 'rule' as const },
      { question: 'The code?', answeredBy: 'rule' as const },
      { question: 'Confirm?', answeredBy: 'rule' as const },
      { question: 'pin again, by a person', answeredBy: 'person' as const },
    ];
    expect(await secretAnswers(answered, undefined, session, read)).toEqual(['4321']);
  });
});
