/**
 * Every result is kept, whatever happens (invariants 5 and 6): results of any size, a cleanup that keeps failing,
 * a stop at any moment, an API that echoes the key; and the local runner fails where Step Functions would.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { QUOTAS, WebrunErrors, type FailureCause } from '../../lambdas/shared/contract';
import { worstCaseHistoryEvents } from '../../lambdas/shared/handlers';
import { synthesizeLocalWorkflow, type LocalWorkflow } from '../../local/asl';
import { startEmulator, type Emulator } from '../../local/emulator';
import { runLocalWorkflow, type LocalRunOptions, type LocalRunSummary } from '../../local/runner';
import { builtWorkflow, executorFor } from '../../local/workflow';
import { expectNoSessionAsked } from '../helpers/local-harness';

const API_KEY = 'wr-keep-KEY-77c1e0a9';
let emulator: Emulator;
let workflow: LocalWorkflow;
let resultsDir: string;

beforeAll(async () => {
  workflow = builtWorkflow('poll');
  emulator = await startEmulator({ apiKey: API_KEY });
});
afterAll(() => emulator.close());
beforeEach(() => {
  emulator.reset();
  resultsDir = mkdtempSync(join(tmpdir(), 'webrun-results-'));
  return () => rmSync(resultsDir, { recursive: true, force: true });
});

const tasks = (n: number) => ({ tasks: Array.from({ length: n }, (_, i) => ({ taskDetails: `Task ${i}` })) });
const run = (input: unknown, extra: Partial<LocalRunOptions> = {}): Promise<LocalRunSummary> =>
  runLocalWorkflow({ input, baseUrl: emulator.url, apiKey: API_KEY, waitScale: 0, workflow, resultsDir, ...extra });
const cause = (summary: LocalRunSummary) => JSON.parse(summary.error!.cause) as FailureCause;
const page = (bytes: number, i: number) => ({ message: `${i}:`.padEnd(bytes, 'x') });

/**
 * A pass-through to the emulator that holds one path's requests until `release()`: an API answer that comes exactly
 * when the test says (a start-session answering after the stop grace), with no timing involved.
 */
async function holding(target: string, path: string) {
  let arrived!: () => void;
  let release!: () => void;
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const seen = new Promise<void>((resolve) => (arrived = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.url === path) {
      arrived();
      await released;
    }
    const reply = await fetch(target + req.url, {
      method: req.method,
      headers: { authorization: req.headers.authorization ?? '', 'content-type': req.headers['content-type'] ?? 'application/json' },
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    });
    res.writeHead(reply.status, { 'content-type': reply.headers.get('content-type') ?? 'application/json' });
    res.end(Buffer.from(await reply.arrayBuffer()));
    if (req.url === path) answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, release, answered, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('results of any size', () => {
  it('20 tasks of 200 KiB each: every result comes back whole, and no state passes 256 KiB', async () => {
    for (let i = 0; i < 20; i++) emulator.enqueueTasks({ outcome: 'completed', inline: true, data: page(200 * 1024, i) });
    const summary = await run(tasks(20));
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    expect(summary.output!.tasks.map((t) => t.result?.message)).toEqual(Array.from({ length: 20 }, (_, i) => page(200 * 1024, i).message));
    expect(summary.output!.tasks.every((t) => t.resultRef === undefined)).toBe(true);
    expect(summary.stats.storedResults).toBe(20);
    expect(summary.stats.largestPayloadBytes).toBeLessThan(QUOTAS.maxPayloadBytes);
    expect(readdirSync(resultsDir, { recursive: true }).filter((f) => String(f).endsWith('.json'))).toHaveLength(20);
    expect(emulator.ledger().open).toBe(0);
  });

  it('3 tasks of ~60 KB (too much for the state together) succeed, each stored or inline', async () => {
    for (let i = 0; i < 3; i++) emulator.enqueueTasks({ outcome: 'completed', pendingPolls: 1, data: page(60_000, i) });
    const summary = await run(tasks(3));
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.output!.tasks.map((t) => String(t.result?.message).length)).toEqual([60_000, 60_000, 60_000]);
  });

  it('a failure keeps every completed result in its cause, large ones by reference', async () => {
    emulator.enqueueTasks({ outcome: 'completed', inline: true, data: page(100_000, 0) }, { outcome: 'completed', inline: true }, { outcome: 'failed' });
    const summary = await run(tasks(3));
    expect(summary.error!.name).toBe('Webrun.TaskFailed');
    const { completed } = cause(summary);
    expect(completed.map((r) => r.index)).toEqual([0, 1]);
    expect(completed[0].resultRef).toMatchObject({ uri: expect.stringMatching(/^file:\/\//), bytes: 100_000 + '{"message":""}'.length });
    expect(completed[1].result).toBeDefined();
    expect(summary.error!.cause.length).toBeLessThanOrEqual(QUOTAS.maxCauseChars);
  });
});

describe('a cleanup that keeps failing', () => {
  it.each([
    ['500 every time', { status: 500 }, 'Webrun.ApiError'],
    ['a dropped connection every time', { hangup: true }, 'Webrun.ApiError'],
    ['401 (the key was rotated mid-run)', { status: 401, code: 'INVALID_API_KEY' }, 'Webrun.Unauthorized'],
  ])('%s: the failure still reports the session, every result and that its end is not confirmed', async (_name, rule, cleanupError) => {
    emulator.injectFault({ endpoint: 'terminate', times: Infinity, ...rule });
    const summary = await run(tasks(2));
    expect(summary.status).toBe('FAILED');
    expect(summary.error!.name).toBe(cleanupError);
    const report = cause(summary);
    const session = emulator.ledger().sessions[0];
    expect(report.sessionId).toBe(session.sessionId);
    expect(report.sessionEnded).toBe(false);
    expect(report.cleanupError).toBe(cleanupError);
    // Both tasks had finished: their results are in the cause.
    expect(report.completed.map((r) => r.taskId)).toEqual(session.tasks.map((t) => t.taskId));
    expect(JSON.stringify(summary)).not.toContain(API_KEY);
  });

  it('a terminate that recovers after many failures: the runner ends the session the workflow could not', async () => {
    // 7 attempts of the success path's terminate, then 4 of the failure step: all refused. The 12th, the runner's, works.
    emulator.injectFault({ endpoint: 'terminate', status: 500, times: 11 });
    const progress: string[] = [];
    const summary = await run(tasks(2), { onProgress: (l) => progress.push(l) });
    expect(summary.status).toBe('FAILED');
    expect(cause(summary).sessionEnded).toBe(false);
    const ledger = emulator.ledger();
    expect(ledger.open).toBe(0);
    expect(ledger.sessions[0].terminateCalls).toBe(1);
    // The display never claimed an end the API did not confirm.
    expect(progress.some((l) => /session \S+ could not be confirmed ended/.test(l))).toBe(true);
    expect(progress.some((l) => /terminated by the runner's cleanup/.test(l))).toBe(true);
  });
});

describe('stops at any moment', () => {
  it.each([
    ['a 503 once', { status: 503, times: 1 }],
    ['a dropped connection once', { hangup: true, times: 1 }],
    ['503 three times (at wait scale 0 too)', { status: 503, times: 3 }],
  ])('a stop whose terminate meets %s: the runner tries again and ends the session', async (_name, rule) => {
    emulator.enqueueTasks({ outcome: 'completed', data: { message: 'first page' } }, { outcome: 'completed', pendingPolls: 1_000 });
    const controller = new AbortController();
    const summary = await run(tasks(2), {
      signal: controller.signal,
      onStateEvent: (e) => {
        if (e.type !== 'exited' || (e.output as { loop?: { results?: unknown[] } }).loop?.results?.length !== 1) return;
        // The stop skips the workflow's own terminate: the runner's is the first the API sees.
        emulator.injectFault({ endpoint: 'terminate', ...rule });
        controller.abort();
      },
    });
    expect(summary.error!.name).toBe('States.Aborted');
    expect(cause(summary)).toMatchObject({ sessionId: summary.sessionId, sessionEnded: true });
    expect(cause(summary).cleanupError).toBeUndefined();
    expect(emulator.ledger().open).toBe(0);
  });

  it('a stop while start-session is in flight waits for its answer and terminates that session', async () => {
    emulator.injectFault({ endpoint: 'start', latencyMs: 400 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const summary = await run(tasks(2), { signal: controller.signal });
    expect(summary.error!.name).toBe('States.Aborted');
    const ledger = emulator.ledger();
    expect(ledger.created).toBe(1);
    expect(ledger.open).toBe(0);
    expect(ledger.sessions[0].terminateCalls).toBe(1);
    expect(summary.sessionId).toBe(ledger.sessions[0].sessionId);
    // The cause is the same report as at any later stop: the session it opened, and that the runner ended it.
    expect(cause(summary)).toEqual({ message: 'The execution was stopped before it finished.', sessionId: ledger.sessions[0].sessionId, taskIndex: null, completed: [], sessionEnded: true });
  });

  it('a start-session that answers after the stop grace cannot record its session: it terminates it, and the run waits for that', async () => {
    const api = await holding(emulator.url, '/start/start-session');
    try {
      const controller = new AbortController();
      let lateStartNoted!: () => void;
      const noted = new Promise<void>((resolve) => (lateStartNoted = resolve));
      const progress: string[] = [];
      const running = run(tasks(2), {
        baseUrl: api.url,
        signal: controller.signal,
        stopGraceMs: 0,
        onProgress: (line) => {
          progress.push(line);
          if (/start-session has not answered yet/.test(line)) lateStartNoted();
        },
      });
      await api.seen;
      controller.abort();
      // The runner has given up waiting (or, before the fix, returned): only now does the API answer with a session.
      await Promise.race([noted, running]);
      api.release();
      const summary = await running;
      await api.answered;
      expect(summary.error!.name).toBe('States.Aborted');
      const ledger = emulator.ledger();
      expect(ledger.created).toBe(1);
      expect(ledger.open).toBe(0);
      expect(progress.join('\n')).toContain('a session it opens now cannot be recorded, and is terminated by it');
    } finally {
      await api.close();
    }
  });

  it('a stop after a task completed keeps its result in the cause, with the session and the task it stopped at', async () => {
    emulator.enqueueTasks({ outcome: 'completed', data: { message: 'first page' } }, { outcome: 'completed', pendingPolls: 1_000 });
    const controller = new AbortController();
    const summary = await run(tasks(2), {
      signal: controller.signal,
      onStateEvent: (e) => (e.type === 'exited' && (e.output as { loop?: { results?: unknown[] } }).loop?.results?.length === 1 ? controller.abort() : undefined),
    });
    expect(summary.error!.name).toBe('States.Aborted');
    const report = cause(summary);
    expect(report.message).toBe('The execution was stopped before it finished.');
    expect(report.completed).toEqual([expect.objectContaining({ index: 0, status: 'completed', result: expect.objectContaining({ message: 'first page' }) })]);
    expect(report).toMatchObject({ taskIndex: 1, sessionId: summary.sessionId, sessionEnded: true });
    expect(emulator.ledger().open).toBe(0);
  });

  it('the execution timeout keeps the completed results in the cause too', async () => {
    const definition = { ...workflow.definition, TimeoutSeconds: 1 };
    const timed: LocalWorkflow = { ...workflow, definition, machine: executorFor(definition, true) };
    emulator.enqueueTasks({ outcome: 'completed', inline: true, data: { message: 'first page' } }, { outcome: 'completed', pendingPolls: 1 });
    // The first poll, the second task's (the first completed within send-message), answers after the execution's 1 s.
    emulator.injectFault({ endpoint: 'poll', latencyMs: 3_000 });
    const summary = await run(tasks(2), { workflow: timed });
    expect(summary.error!.name).toBe('States.Timeout');
    const report = cause(summary);
    expect(report.message).toBe('The execution reached its timeout.');
    expect(report.completed.map((r) => r.result?.message)).toEqual(['first page']);
    expect(report).toMatchObject({ taskIndex: 1, sessionEnded: true });
    expect(emulator.ledger().open).toBe(0);
  });

  it('a stop while send-message is held cancels the call instead of waiting for it, and terminates', async () => {
    emulator.injectFault({ endpoint: 'send', latencyMs: 20_000 });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    const summary = await run(tasks(1), { signal: controller.signal });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(summary.error!.name).toBe('States.Aborted');
    expect(emulator.ledger().open).toBe(0);
  });
});

describe('what the API says never carries the key out', () => {
  it('a failed task whose reason echoes the key', async () => {
    emulator.enqueueTasks({ outcome: 'failed', reason: `Refused key ${API_KEY}` });
    const summary = await run(tasks(1));
    expect(summary.error!.name).toBe('Webrun.TaskFailed');
    expect(summary.error!.cause).toContain('[redacted]');
    expect(JSON.stringify(summary)).not.toContain(API_KEY);
  });

  it('a guardrail question that echoes the key', async () => {
    emulator.enqueueTasks({ outcome: 'guardrail', question: `Is ${API_KEY} yours?`, pendingPolls: 1 });
    const summary = await run(tasks(1));
    expect(summary.error!.name).toBe('Webrun.GuardrailTriggered');
    expect(JSON.stringify(summary)).not.toContain(API_KEY);
  });
});

it('a 400 after the session exists is Webrun.BadRequest (a workflow failure), not InvalidInput', async () => {
  emulator.injectFault({ endpoint: 'send', status: 400 });
  const summary = await run(tasks(1));
  expect(summary.error!.name).toBe('Webrun.BadRequest');
  expect(emulator.ledger().open).toBe(0);
});

describe('text of any length from the API stays inside the quotas (a quota break would lose the results)', () => {
  it('a 300 KB guardrail question: GuardrailTriggered with the question cut short and the first result kept, not States.DataLimitExceeded', async () => {
    emulator.enqueueTasks({ outcome: 'completed', inline: true, data: { message: 'first' } }, { outcome: 'guardrail', questions: [`Confirm ${'x'.repeat(300_000)}?`] });
    const summary = await run(tasks(2));
    expect(summary.error?.name).toBe(WebrunErrors.GuardrailTriggered);
    expect(summary.error!.cause.length).toBeLessThan(QUOTAS.maxCauseChars);
    expect(cause(summary).completed).toEqual([expect.objectContaining({ index: 0, result: { message: 'first' } })]);
    expect(emulator.ledger().open).toBe(0);
  });

  it('a 300 KB failure reason: TaskFailed, the first result kept', async () => {
    emulator.enqueueTasks({ outcome: 'completed', inline: true, data: { message: 'first' } }, { outcome: 'failed', reason: 'y'.repeat(300_000) });
    const summary = await run(tasks(2));
    expect(summary.error?.name).toBe(WebrunErrors.TaskFailed);
    expect(cause(summary).completed.map((r) => r.index)).toEqual([0]);
  });

  it('8 tasks that each answered 5 long questions by rule: the run succeeds, every question listed, cut short', async () => {
    // 40 questions of 8,000 characters: 320 KB if the state kept them whole, past its 256 KiB.
    const questions = Array.from({ length: 5 }, (_, i) => `Confirm step ${i}: ${'z'.repeat(8_000)}?`);
    emulator.enqueueTasks(...Array.from({ length: 8 }, () => ({ outcome: 'completed' as const, questions, pendingPolls: 1 })));
    const input = { session: { guardrails: { rules: [{ when: 'confirm', answer: 'yes' }] } }, tasks: tasks(8).tasks };
    const summary = await run(input);
    expect(summary.status, JSON.stringify(summary.error)?.slice(0, 300)).toBe('SUCCEEDED');
    expect(summary.output!.tasks[7].guardrails).toHaveLength(5);
    expect(summary.output!.tasks[7].guardrails![0].question.length).toBeLessThanOrEqual(200);
  });
});

describe('Step Functions quotas, enforced locally', () => {
  const custom = (definition: Record<string, unknown>): LocalWorkflow => ({
    ...workflow,
    definition: definition as LocalWorkflow['definition'],
    taskHandlers: {},
    machine: executorFor(definition, true),
  });

  it('a state output over 256 KiB fails the execution with States.DataLimitExceeded', async () => {
    const summary = await run(tasks(1), { workflow: custom({ StartAt: 'Big', States: { Big: { Type: 'Pass', Result: { blob: 'x'.repeat(300_000) }, End: true } } }) });
    expect(summary.status).toBe('FAILED');
    expect(summary.error).toEqual({ name: 'States.DataLimitExceeded', cause: expect.stringContaining('"Big"') });
  });

  it('a Fail state cause over 32,768 characters fails with States.DataLimitExceeded', async () => {
    const summary = await run(tasks(1), { workflow: custom({ StartAt: 'Fail', States: { Fail: { Type: 'Fail', Error: 'E', Cause: 'c'.repeat(40_000) } } }) });
    expect(summary.error!.name).toBe('States.DataLimitExceeded');
  });

  it('an execution input over 256 KiB starts no execution (StartExecution refuses it): InvalidInput, before any state', async () => {
    const input = { tasks: [{ taskDetails: 'x'.repeat(270_000) }] };
    const refused = await run(input);
    expect(refused.error!.name).toBe('Webrun.InvalidInput');
    expect(cause(refused).message).toBe('input: is 270030 bytes; at most 65536 are accepted');
    expect(refused.stats.stateTransitions).toBe(0);
    // Under 256 KiB the execution starts, and its start state refuses the input, as deployed.
    input.tasks[0].taskDetails = 'x'.repeat(250_000);
    const started = await run(input);
    expect(started.error!.name).toBe('Webrun.InvalidInput');
    expect(started.stats.stateTransitions).toBeGreaterThan(0);
    expectNoSessionAsked(emulator);
  });

  it('a polling plan that could write past 25,000 history events refuses the input before any session, instead of breaking the quota mid-run', async () => {
    // pollInterval 1 s with no hold: a 5-minute task may take 360 poll cycles of 9 events; 9 such tasks, ~29,000.
    // Once, this run started, completed 7 tasks and failed with States.Runtime at the 25,000th event.
    const naive = synthesizeLocalWorkflow({ pollInterval: Duration.seconds(1), pollHold: Duration.seconds(0) });
    const summary = await run(tasks(9), { workflow: naive });
    expect(summary.error!.name).toBe(WebrunErrors.InvalidInput);
    expect(cause(summary).message).toMatch(/^tasks: could need \d+ history events .* more than the 25000 an execution holds/);
    expect(emulator.ledger().created).toBe(0);
    // As many as the plan can follow run.
    for (let i = 0; i < 2; i++) emulator.enqueueTasks({ outcome: 'completed', pendingPolls: 3 });
    expect((await run(tasks(2), { workflow: naive })).status).toBe('SUCCEEDED');
  }, 60_000);

  it('the deployed design stays far inside the quotas on its longest run: 20 tasks polled to their cap', async () => {
    // The deployed plan's cap is one poll invocation a task (it holds 360 s, GETting every 2 s): a task pending for one
    // GET or for 180 writes the same history (GETs within an invocation write none), so one is enough here.
    for (let i = 0; i < 20; i++) emulator.enqueueTasks({ outcome: 'completed', pendingPolls: 1 });
    const summary = await run(tasks(20));
    expect(summary.status, summary.error?.cause).toBe('SUCCEEDED');
    expect(summary.stats.historyEvents).toBeLessThan(QUOTAS.maxHistoryEvents / 4);
    // The start step's worst case (which refuses inputs past 25,000) is an upper bound of what a run writes.
    expect(summary.stats.historyEvents).toBeLessThanOrEqual(worstCaseHistoryEvents(tasks(20).tasks.map(() => ({ maxDuration: 300_000 })), workflow.settings.pollPlan));
  }, 60_000);
});

describe('hostile input', () => {
  const nested = (depth: number) => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < depth; i++) schema = { type: 'object', properties: { a: schema } };
    return { tasks: [{ taskDetails: 'x', outputType: 'structured_json', outputSchema: schema }] };
  };

  it.each([3_000, 5_000])('an outputSchema nested %i deep is refused as InvalidInput at once, before any session (never a hang or a crash)', async (depth) => {
    const started = Date.now();
    const summary = await run(nested(depth));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(summary.error!.name).toBe('Webrun.InvalidInput');
    expect(cause(summary).message).toMatch(/nested too deeply/);
    expectNoSessionAsked(emulator);
  });
});
