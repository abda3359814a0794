/**
 * A tiny scripted HTTP server on 127.0.0.1 for client tests: each request takes the next scripted reply (or the
 * responder function's answer) and is recorded with its method, path, headers and body.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  json: any;
}

export interface ScriptedReply {
  status?: number;
  headers?: Record<string, string>;
  /** Serialized as JSON unless `raw` is given. */
  body?: unknown;
  /** Sent verbatim (may be '' for an empty body). */
  raw?: string;
  /** Never answer: the request hangs until the client gives up or the server closes. */
  hang?: boolean;
  /** Cut the connection without any answer (a reset after the request was sent). */
  destroy?: boolean;
  /**
   * Send the status, the headers (a Content-Length for the whole body) and half the body, then cut the connection
   * ('cut') or send nothing more ('stall').
   */
  midBody?: 'cut' | 'stall';
  /** Hold the answer this many ms first (an API that holds the request while the agent works). */
  delayMs?: number;
}

export type Responder = (req: RecordedRequest, n: number) => ScriptedReply;

export interface ScriptedServer {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Queues replies, used in order; once the queue is empty the fallback responder answers. */
  reply(...replies: ScriptedReply[]): void;
  /** Replaces the fallback responder (default: HTTP 599 "unscripted request", which fails any test that reaches it). */
  respond(fn: Responder): void;
  close(): Promise<void>;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const queue: ScriptedReply[] = [];
  const requests: RecordedRequest[] = [];
  let fallback: Responder = () => ({ status: 599, body: { success: false, error: 'unscripted request' } });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body === '' ? undefined : JSON.parse(body);
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json };
      requests.push(recorded);
      const reply = queue.length > 0 ? queue.shift()! : fallback(recorded, requests.length - 1);
      if (reply.hang) return;
      if (reply.destroy) {
        req.socket.destroy();
        return;
      }
      const text = reply.raw !== undefined ? reply.raw : reply.body === undefined ? '' : JSON.stringify(reply.body);
      const headers: Record<string, string> = { ...(reply.raw === undefined && reply.body !== undefined ? { 'content-type': 'application/json' } : {}), ...reply.headers };
      const answer = (): void => {
        // The client may have given up meanwhile (closeAllConnections on close): nothing to answer then.
        if (res.destroyed) return;
        if (reply.midBody) {
          res.writeHead(reply.status ?? 200, { ...headers, 'content-length': String(Buffer.byteLength(text)) });
          res.write(text.slice(0, Math.floor(text.length / 2)), () => {
            if (reply.midBody === 'cut') req.socket.destroy();
          });
          return;
        }
        res.writeHead(reply.status ?? 200, headers);
        res.end(text);
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    reply: (...replies) => void queue.push(...replies),
    respond: (fn) => {
      fallback = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port that nothing listens on (a server was bound to it and closed). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
