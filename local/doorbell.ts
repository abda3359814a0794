/**
 * Completion by webhook, locally: the receiver handler served on 127.0.0.1 (the stand-in for the public Function
 * URL) and a registry of the states waiting on a task token (the stand-in for SendTaskSuccess/SendTaskFailure).
 */
import { createServer } from 'node:http';
import { idleLonger } from './emulator/util';
import type { AddressInfo } from 'node:net';
import type { DoorbellAnswer, DoorbellRequest } from '../lambdas/shared/state';
import type { TaskTokens } from '../lambdas/shared/task-tokens';

/** What a waiting state gets back: the new loop, or the error the task ended with (its name and cause as sent). */
export type TokenOutcome = { output: unknown } | { error: string; cause: string };

export interface LocalTaskTokens extends TaskTokens {
  /** A promise of what the token's state resumes with. */
  wait(token: string): Promise<TokenOutcome>;
  /** Stops waiting on a token (its state failed or timed out): a later resume answers false, as for a dead token. */
  forget(token: string): void;
  /** Resolves once the token is resumed or forgotten. */
  settled(token: string): Promise<void>;
  /** Tokens still waiting. */
  readonly waiting: number;
}

export function localTaskTokens(): LocalTaskTokens {
  const waiters = new Map<string, (outcome: TokenOutcome) => void>();
  const done = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const doneOf = (token: string) => {
    let entry = done.get(token);
    if (!entry) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      done.set(token, entry);
    }
    return entry;
  };
  const finish = (token: string) => {
    waiters.delete(token);
    doneOf(token).resolve();
  };
  const settle = async (token: string, outcome: TokenOutcome) => {
    const resolve = waiters.get(token);
    if (!resolve) return false;
    finish(token);
    resolve(outcome);
    return true;
  };
  return {
    wait: (token) => new Promise<TokenOutcome>((resolve) => waiters.set(token, resolve)),
    forget: (token) => finish(token),
    settled: (token) => doneOf(token).promise,
    succeed: (token, output) => settle(token, { output: structuredClone(output) }),
    fail: (token, error, cause) => settle(token, { error, cause }),
    get waiting() {
      return waiters.size;
    },
  };
}

export interface LocalReceiver {
  /** The base URL the send step puts into each doorbell (`http://127.0.0.1:<port>/doorbell`). */
  url: string;
  close(): Promise<void>;
}

/** Serves the receiver handler on a free loopback port. Bodies are read and ignored: a doorbell is only a hint. */
export async function startReceiver(receive: (request: DoorbellRequest) => Promise<DoorbellAnswer>): Promise<LocalReceiver> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
      receive({ method: req.method ?? 'GET', path: new URL(req.url ?? '/', 'http://local').pathname, headers })
        .then((answer) => {
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer.body));
        })
        .catch(() => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end('{"outcome":"error"}');
        });
    });
  });
  idleLonger(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/doorbell`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
