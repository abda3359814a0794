/**
 * A loopback emulator of the webrun HTTP API (`/start/start-session`, `/start/send-message`, `/start/run-task`,
 * `GET /task/{sessionId}/{taskId}`), answering with the response shapes the vendor documents (see
 * shared/webrun-api/API-NOTES.md and docs/EMULATOR.md). Tests script it: queued task behaviours (pending for a
 * while, completed, guardrail questions, failed, stuck, cost, result size, webhook doorbells), injected faults
 * (429/5xx, latency, hang-ups, non-JSON bodies), a session limit, and a ledger of every session, task, request and
 * doorbell, so a test can assert that every session created was terminated exactly once.
 *
 * node:http only. Binds 127.0.0.1. The API key is compared in memory and never logged or stored: the ledger only
 * records whether an Authorization header was missing, invalid or valid. Webhook `auth` values are never recorded;
 * site credentials (`secrets[].fields` values) and guardrail answers are redacted in the ledger (in-process
 * `ledger({ reveal: true })` shows them).
 */
import type { AddressInfo } from 'node:net';
import { Api } from './api';
import { Doorbells, validateDoorbellScript } from './doorbell';
import { FaultBook } from './faults';
import { Model, SHAPES, type ModelConfig, type Task } from './model';
import { EmulatorServer } from './server';
import type { Emulator, EmulatorOptions, ForgedDoorbell, Ledger, LedgerOptions, ResponseShape } from './types';
import { nonNegInt, nonNegNumber, Timers } from './util';

export type {
  DoorbellRecord,
  DoorbellScript,
  DoorbellType,
  Emulator,
  EmulatorOptions,
  Endpoint,
  FaultRule,
  ForgedDoorbell,
  GuardrailAnswer,
  Ledger,
  LedgerOptions,
  RequestRecord,
  ResponseShape,
  SessionRecord,
  TaskBehaviour,
  TaskOutcome,
  TaskRecord,
  TaskStatus,
} from './types';
export { validateTaskBehaviour } from './model';

/** How long a task sent with a webhook stays pending when neither its behaviour nor the options say. */
const DEFAULT_WEBHOOK_PENDING_MS = 200;
const DEFAULT_BALANCE = 12.5;

function modelConfig(options: EmulatorOptions): ModelConfig {
  const shape: ResponseShape = options.shape ?? 'documented';
  if (!SHAPES.includes(shape)) throw new TypeError('shape must be documented or status');
  const idleMs = options.sessionIdleMs ?? 300_000;
  if (!Number.isFinite(idleMs) || idleMs <= 0) throw new TypeError('sessionIdleMs must be a positive number');
  return {
    pendingPolls: nonNegInt(options.pendingPolls, 'pendingPolls') ?? 2,
    shape,
    idleMs,
    maxSessions: nonNegInt(options.maxSessions, 'maxSessions'),
    taskCost: nonNegNumber(options.taskCost, 'taskCost'),
    costPerSecond: nonNegNumber(options.costPerSecond, 'costPerSecond'),
    webhookPendingMs: nonNegInt(options.webhookPendingMs, 'webhookPendingMs') ?? DEFAULT_WEBHOOK_PENDING_MS,
    doorbell: options.doorbell === undefined ? undefined : validateDoorbellScript(options.doorbell, 'doorbell'),
  };
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError('port must be an integer from 0 to 65535');
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) throw new TypeError('apiKey must be a non-empty string');
  const balance = options.balance ?? DEFAULT_BALANCE;
  if (typeof balance !== 'number' || !Number.isFinite(balance)) throw new TypeError('balance must be a number');
  const cfg = modelConfig(options);
  const sendHoldMs = nonNegInt(options.sendHoldMs, 'sendHoldMs') ?? 0;
  const log = options.log;

  let baseUrl = '';
  const timers = new Timers();
  const doorbells = new Doorbells(log);
  const ids = (t: Task): { sessionId: string; taskId: string } => ({ sessionId: t.sessionId, taskId: t.id });
  const model = new Model(cfg, timers, {
    taskSent(t) {
      const early = t.doorbell.early;
      if (!t.webhook || early === undefined || early === false) return;
      doorbells.early(t.webhook, ids(t), early === true ? Math.floor(t.stretchMs / 2) : early);
    },
    taskEnded(t, type) {
      if (t.webhook) doorbells.taskEnded(t.webhook, ids(t), type, t.doorbell);
    },
  });
  const faults = new FaultBook();
  const api = new Api(model, timers, { sendHoldMs, balance, maxSessions: cfg.maxSessions, baseUrl: () => baseUrl });

  const ledger = (opts: LedgerOptions = {}): Ledger => ({
    ...model.snapshot(opts.reveal === true),
    requests: server.requests.map((r) => ({ ...r })),
    doorbells: doorbells.list(),
  });
  const reset = (): void => {
    timers.cancelAll();
    model.reset();
    faults.reset();
    doorbells.reset();
    server.requests = [];
  };
  // Over HTTP (no auth) the ledger is always the redacted one: `reveal` is for in-process callers only.
  const server = new EmulatorServer({ api, model, faults, doorbells, timers, apiKey: options.apiKey, ledger: () => ledger(), reset, log });

  const sweepTimer = setInterval(() => model.sweep(), Math.max(5, Math.min(1000, Math.floor(cfg.idleMs / 2))));
  sweepTimer.unref();

  await new Promise<void>((resolve, reject) => {
    server.http.once('error', reject);
    server.http.listen(port, '127.0.0.1', () => {
      server.http.off('error', reject);
      resolve();
    });
  }).catch((e: unknown) => {
    clearInterval(sweepTimer);
    throw e;
  });
  const actualPort = (server.http.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${actualPort}`;

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    port: actualPort,
    enqueueTasks(...behaviours) {
      model.enqueue(behaviours);
    },
    injectFault(rule) {
      faults.add([rule]);
    },
    ledger,
    reset,
    ringDoorbell: (bell: ForgedDoorbell) => doorbells.forge(bell),
    doorbellsSettled: () => doorbells.settled(),
    close(): Promise<void> {
      if (closing) return closing;
      timers.close();
      doorbells.close();
      clearInterval(sweepTimer);
      closing = new Promise<void>((resolve) => {
        server.http.close(() => resolve());
        server.http.closeAllConnections();
      });
      return closing;
    },
  };
}
