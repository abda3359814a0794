/**
 * A test of its own for each local run: its own emulator and run function, so that tests whose time is mostly
 * waiting (scaled Wait states, injected latency, retry back-off) can run concurrently (`describe.concurrent`).
 * `it` from `localRunTest(...)` hands each test `h`; its emulator is closed when the test ends.
 */
import { expect, it } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../local/emulator';
import { runLocalWorkflow, type LocalRunOptions, type LocalRunSummary } from '../../local/runner';

export interface LocalHarness {
  emulator: Emulator;
  /** Every log line, state event (the history) and progress line the test's runs produced, as [kind, ...args]. */
  seen: unknown[];
  run(input: unknown, options?: Partial<LocalRunOptions>): Promise<LocalRunSummary>;
}

export function localRunTest(apiKey: string, emulatorOptions: EmulatorOptions, runOptions: Partial<LocalRunOptions>) {
  return it.extend<{ h: LocalHarness }>({
    h: async ({}, use) => {
      const emulator = await startEmulator({ ...emulatorOptions, apiKey });
      const seen: unknown[] = [];
      const record = (kind: string) => (...args: unknown[]) => seen.push([kind, ...args]);
      try {
        await use({
          emulator,
          seen,
          run: (input, options = {}) => runLocalWorkflow({
            input, baseUrl: emulator.url, apiKey,
            log: { info: record('info'), warn: record('warn'), error: record('error') },
            onStateEvent: record('event'),
            onProgress: record('progress'),
            ...runOptions,
            ...options,
          }),
        });
      } finally {
        await emulator.close();
      }
    },
  });
}

/** Every session the test's emulator created was terminated by exactly one terminate, and none is open. */
export function expectEveryoneTerminatedOnce(emulator: Emulator): void {
  const ledger = emulator.ledger();
  expect(ledger.created).toBeGreaterThan(0);
  expect(ledger.open).toBe(0);
  for (const s of ledger.sessions) expect(s.terminateCalls).toBe(1);
}

/**
 * No run asked `emulator` for a session. Not "no request at all": a poll that an earlier test's stop cut off in flight
 * may reach an emulator its file shares after the next test's reset (on a busy machine it did), as the Lambda of a
 * stopped execution may go on; a run's first request is always start-session.
 */
export function expectNoSessionAsked(emulator: Emulator): void {
  const ledger = emulator.ledger();
  expect(ledger.created).toBe(0);
  expect(ledger.requests.filter((r) => r.path === '/start/start-session')).toEqual([]);
}
