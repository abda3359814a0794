/**
 * RFC 6238 time-based one-time passwords (HMAC-SHA1, 30-second steps), for guardrail answers from a secret that
 * holds a 2FA seed in base32 (as authenticator apps are given it). The code is computed when the question comes
 * and sent; neither the seed nor the code is logged or recorded.
 */
import { createHmac } from 'node:crypto';
import { ConfigError } from './errors';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decodes RFC 4648 base32 (case-insensitive, spaces and padding ignored). */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s=-]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of clean) {
    const index = ALPHABET.indexOf(char);
    if (index < 0) throw new ConfigError('A TOTP seed must be base32 (letters A-Z and digits 2-7).');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  if (out.length === 0) throw new ConfigError('A TOTP seed must not be empty.');
  return Buffer.from(out);
}

/** The code for `key` at `timeMs` (RFC 6238 with RFC 4226's dynamic truncation). */
export function totpCode(key: Buffer, timeMs: number, digits = 6, stepSeconds = 30): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(timeMs / 1000 / stepSeconds)));
  const hmac = createHmac('sha1', key).update(counter).digest();
  const offset = hmac[hmac.length - 1] & 0x0f;
  const binary = ((hmac[offset] & 0x7f) << 24) | (hmac[offset + 1] << 16) | (hmac[offset + 2] << 8) | hmac[offset + 3];
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** The current 6-digit code of a base32 seed. */
export function totp(seedBase32: string, timeMs = Date.now()): string {
  return totpCode(base32Decode(seedBase32), timeMs);
}
