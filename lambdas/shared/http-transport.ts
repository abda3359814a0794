/**
 * How the webrun client's calls go out: node:http and node:https, whose global agents keep connections alive (and close
 * one idle for 5 s, where fetch closes it at 4 s).
 *
 * Not fetch. Node's fetch (undici) builds a Request, a Response, Headers and web streams for every call, and its first
 * call compiles undici: on Node 20, 300 local runs of examples/shopping.json (3,311 calls) took 5.9 s of CPU through
 * fetch and 3.8 s through this, client and emulator together. The client uses nothing fetch adds: it follows no
 * redirect (a 3xx is answered as an error that names the status, and the API key goes to no other address), asks for
 * no compression, and keeps its own timeouts.
 */
import * as http from 'node:http';
import * as https from 'node:https';

export interface HttpCall {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Ends the call, whether it is connecting, sending or reading the answer: it then rejects with an AbortError. */
  signal: AbortSignal;
}

export interface HttpAnswer {
  status: number;
  /** A response header by its lower-case name (several of one name joined with ", "). */
  header(name: string): string | undefined;
  /** The whole body, decoded as UTF-8 (without a leading byte-order mark). */
  text: string;
}

function send(call: HttpCall): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    // Once the signal has fired, whatever error the torn-down connection reports is the abort.
    const fail = (err: unknown): void => reject(call.signal.aborted ? Object.assign(new Error('The call was aborted.'), { name: 'AbortError', cause: call.signal.reason }) : err);
    const url = new URL(call.url);
    const request = url.protocol === 'https:' ? https.request : http.request;
    // A request that cannot even be made (a header Node refuses) throws here, inside the executor: a rejection too.
    const req = request(url, { method: call.method, headers: call.headers, signal: call.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const headers = res.headers;
        resolve({
          status: res.statusCode ?? 0,
          header: (name) => {
            const value = headers[name];
            return Array.isArray(value) ? value.join(', ') : value;
          },
          // As fetch's text(): UTF-8, a leading byte-order mark dropped (JSON.parse would refuse it).
          text: new TextDecoder().decode(Buffer.concat(chunks)),
        });
      });
      res.on('error', fail);
      // The connection closed before the whole body came: never a truncated answer.
      res.on('close', () => {
        if (!res.complete) fail(Object.assign(new Error('The connection closed before the whole answer came.'), { code: 'ECONNRESET' }));
      });
    });
    req.on('error', fail);
    req.end(call.body);
  });
}

/** What the client calls. Tests that must see, answer or refuse calls to an address off this machine replace `send`. */
export const httpTransport = { send };
