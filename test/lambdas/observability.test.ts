/**
 * The Lambdas' observability: which custom metrics each step emits, the Powertools binding (units, dimensions,
 * EMF), and the correlation keys on every log line of an invocation (never the payload).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_POLL_PLAN } from '../../lambdas/shared/contract';
import { makeHandlers, type HandlerDeps, type InvocationContext } from '../../lambdas/shared/handlers';
import type { ResultStore } from '../../lambdas/shared/result-store';
import { memorySessionRecords } from '../../lambdas/shared/session-records';
import type { LoopState } from '../../lambdas/shared/state';
import { correlationKeys, instrument, powertoolsMetrics } from '../../lambdas/shared/lambda-runtime';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { lambdaContext } from '../helpers/lambda-context';
import { METRICS_NAMESPACE, WorkflowMetricNames as M, type WorkflowMetricName } from '../../lambdas/shared/contract';
import type { TaskOutcome } from '../../lambdas/shared/types';
import type { WebrunClient } from '../../lambdas/shared/webrun-client';

const silent = { info: () => {}, warn: () => {}, error: () => {} };
const task = { taskDetails: 'Open the page', maxDuration: 60_000 };

/** Handlers over a scripted client, recording every metric data point. */
function setup(outcomes: { send?: TaskOutcome; get?: TaskOutcome[] } = {}, withMetrics = true) {
  const points: Array<[WorkflowMetricName, number]> = [];
  const gets = [...(outcomes.get ?? [])];
  const client = {
    startSession: async () => ({ sessionId: 's-1' }),
    sendTask: async () => outcomes.send ?? { kind: 'pending', taskId: 't-1' },
    getTask: async () => gets.shift() ?? { kind: 'pending', taskId: 't-1' },
    terminateSession: async () => ({ terminated: true }),
  } as unknown as WebrunClient;
  const deps: HandlerDeps = {
    client: async () => client,
    pollPlan: { ...DEFAULT_POLL_PLAN, holdSeconds: 0 },
    sleep: async () => {},
    log: silent,
    results: { put: async () => 'mem://x', get: async () => '{}' } satisfies ResultStore,
    placement: { inlineResultBytes: 8192 },
    sessions: memorySessionRecords(),
    ...(withMetrics ? { metrics: { add: (name: WorkflowMetricName, value: number) => points.push([name, value]) } } : {}),
  };
  return { handlers: makeHandlers(deps), points, names: () => points.map(([n]) => n) };
}

const run = { sessionId: 's-1', tasks: [task], taskCount: 1 };
const send = () => ({ executionArn: 'arn:aws:states:eu-west-1:1:execution:sm:x', run, loop: { index: 0, status: 'ready', results: [] } as LoopState });
const poll = (extra: { attempt?: number; sentAt?: number } = {}) => ({
  executionArn: 'arn:aws:states:eu-west-1:1:execution:sm:x', run,
  loop: { index: 0, status: 'pending', pending: { taskId: 't-1', attempt: 0, maxAttempts: 3, sentAt: Date.now(), ...extra }, results: [] } as LoopState,
});

describe('workflow metrics', () => {
  it('a started session and a task completed within send-message: its duration is the call', async () => {
    const { handlers, points, names } = setup({ send: { kind: 'completed', taskId: 't-1', data: { message: 'ok' } } });
    await handlers.startSession({ input: { tasks: [task] } });
    await handlers.sendTask(send());
    expect(names()).toEqual([M.sessionsStarted, M.tasksCompleted, M.taskDuration]);
    expect(points[2][1]).toBeGreaterThanOrEqual(0);
    expect(points[2][1]).toBeLessThan(1_000);
  });

  it('a pending send emits nothing; each poll counts an attempt; the completing poll reports the duration', async () => {
    const { handlers, points, names } = setup({ get: [{ kind: 'pending', taskId: 't-1' }, { kind: 'completed', taskId: 't-1', data: {} }] });
    await handlers.sendTask(send());
    expect(names()).toEqual([]);
    await handlers.pollTask(poll());
    await handlers.pollTask(poll({ attempt: 1, sentAt: Date.now() - 10_000 }));
    expect(names()).toEqual([M.pollAttempts, M.pollAttempts, M.tasksCompleted, M.taskDuration]);
    expect(points[3][1]).toBeGreaterThanOrEqual(10_000);
    expect(points[3][1]).toBeLessThan(11_000);
  });

  it('a poll event that carries sentAt gets the exact duration', async () => {
    const { handlers, points } = setup({ get: [{ kind: 'completed', taskId: 't-1', data: {} }] });
    await handlers.pollTask(poll({ sentAt: Date.now() - 42_000 }));
    const duration = points.find(([n]) => n === M.taskDuration)![1];
    expect(duration).toBeGreaterThanOrEqual(42_000);
    expect(duration).toBeLessThan(43_000);
  });

  it.each([
    ['guardrail', { kind: 'guardrail', question: 'Need a password' } as TaskOutcome, M.guardrailsTriggered],
    ['failed task', { kind: 'failed', reason: 'broken page' } as TaskOutcome, M.tasksFailed],
  ])('a %s is counted', async (_, outcome, metric) => {
    const { handlers, names } = setup({ send: outcome });
    await expect(handlers.sendTask(send())).rejects.toThrow();
    expect(names()).toEqual([metric]);
  });

  it('a poll timeout counts as a failed task', async () => {
    const { handlers, names } = setup();
    await expect(handlers.pollTask(poll({ attempt: 2 }))).rejects.toThrow(/still pending after 3 polls/);
    expect(names()).toEqual([M.pollAttempts, M.tasksFailed]);
  });

  it('a terminated session is counted', async () => {
    const { handlers, names } = setup();
    await handlers.terminateSession({ ...send(), loop: { index: 1, status: 'ready', results: [] } });
    expect(names()).toEqual([M.sessionsTerminated]);
  });

  it('without a metrics dependency (the local runner) the handlers work the same', async () => {
    const { handlers } = setup({ send: { kind: 'completed', taskId: 't-1', data: {} } }, false);
    await expect(handlers.sendTask(send())).resolves.toMatchObject({ status: 'ready', index: 1 });
  });
});

describe('Powertools binding', () => {
  afterEach(() => vi.restoreAllMocks());

  it('emits EMF in the WebrunSfn namespace, with the stack as a dimension and milliseconds for durations', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(' ')));
    const target = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'webrun-sfn' });
    const metrics = powertoolsMetrics(target, { WEBRUN_STACK_NAME: 'WebrunSfnProd' });
    metrics.add(M.taskDuration, 1234);
    metrics.add(M.tasksCompleted, 1);
    target.publishStoredMetrics();
    const emf = lines.map((l) => JSON.parse(l)).find((o) => o._aws);
    expect(emf).toMatchObject({ service: 'webrun-sfn', stack: 'WebrunSfnProd', TaskDuration: 1234, TasksCompleted: 1 });
    const [directive] = emf._aws.CloudWatchMetrics;
    expect(directive.Namespace).toBe(METRICS_NAMESPACE);
    expect(directive.Dimensions[0]).toEqual(expect.arrayContaining(['service', 'stack']));
    expect(directive.Metrics).toEqual(expect.arrayContaining([{ Name: 'TaskDuration', Unit: 'Milliseconds' }, { Name: 'TasksCompleted', Unit: 'Count' }]));
  });
});

describe('the Lambda entry points (Powertools through Middy)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('correlation keys come from the state: the execution, session, task index and task id, nothing else', () => {
    expect(correlationKeys({ executionArn: 'arn:aws:states:eu-west-1:1:execution:sm:x', run: { sessionId: 's-1', tasks: [task] }, loop: { index: 2, pending: { taskId: 't-9' }, results: [{ secret: 'x' }] } }))
      .toEqual({ executionArn: 'arn:aws:states:eu-west-1:1:execution:sm:x', sessionId: 's-1', taskIndex: 2, taskId: 't-9' });
    expect(correlationKeys({ input: { tasks: [task] } })).toEqual({});
    expect(correlationKeys('text')).toEqual({});
  });

  let currentLogger: Logger | undefined;
  /** Runs an instrumented step as Lambda would, twice, and returns every JSON line it wrote. */
  async function invokeTwice(fn: (event: unknown, ctx: InvocationContext) => Promise<unknown>) {
    const lines: string[] = [];
    const capture = (chunk: unknown) => (lines.push(String(chunk)), true);
    vi.spyOn(process.stdout, 'write').mockImplementation(capture as never);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture as never);
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    vi.spyOn(console, 'info').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    // As in Lambda: an on-demand environment, whose first invocation is a cold start.
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    const tools = {
      logger: new Logger({ serviceName: 'webrun-sfn' }),
      metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'webrun-sfn' }),
      tracer: new Tracer({ serviceName: 'webrun-sfn', enabled: false }),
    };
    currentLogger = tools.logger;
    const handler = instrument('pollTask', fn, tools);
    const event = { executionArn: 'arn:aws:states:eu-west-1:1:execution:sm:x', run: { sessionId: 's-1' }, loop: { index: 1, pending: { taskId: 't-2' }, results: [{ result: 'private' }] } };
    const outcomes = await Promise.allSettled([handler(event, lambdaContext(30_000, 'req-1'))]);
    outcomes.push(...(await Promise.allSettled([handler({ run: { sessionId: 's-2' }, loop: { index: 0 } }, lambdaContext(30_000, 'req-2'))])));
    const json = lines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    return { outcomes, json };
  }

  it('log lines carry the Lambda context and the correlation keys of their own invocation only', async () => {
    const { json } = await invokeTwice(async () => {
      currentLogger!.info('inside');
      return 'ok';
    });
    const inside = json.filter((l) => l.message === 'inside');
    expect(inside).toHaveLength(2);
    expect(inside[0]).toMatchObject({ function_request_id: 'req-1', cold_start: true, step: 'pollTask', executionArn: 'arn:aws:states:eu-west-1:1:execution:sm:x', sessionId: 's-1', taskIndex: 1, taskId: 't-2' });
    expect(inside[1]).toMatchObject({ function_request_id: 'req-2', cold_start: false, sessionId: 's-2', taskIndex: 0 });
    expect(inside[1].taskId).toBeUndefined();
    expect(inside[1].executionArn).toBeUndefined();
  });

  it('passes the remaining time on, logs the context, flushes metrics with a ColdStart metric, and names a failure', async () => {
    let remaining = 0;
    const { outcomes, json } = await invokeTwice(async (event, ctx) => {
      remaining = ctx.remainingMs!();
      if ((event as { run: { sessionId: string } }).run.sessionId === 's-2') throw Object.assign(new Error('Task 1 was still pending after 3 polls'), { name: 'Webrun.PollTimeout' });
      return 'pending';
    });
    expect(remaining).toBeGreaterThan(25_000);
    expect(remaining).toBeLessThanOrEqual(30_000);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected']);
    const failed = json.find((l) => l.message === 'step failed')!;
    expect(failed).toMatchObject({ level: 'WARN', errorName: 'Webrun.PollTimeout', function_request_id: 'req-2', sessionId: 's-2', taskIndex: 0, step: 'pollTask' });
    // Keys of the first invocation are gone from the second's lines.
    expect(failed.taskId).toBeUndefined();
    expect(failed.cold_start).toBe(false);
    // One EMF document per invocation (flushed at its end); the first of a fresh Metrics carries ColdStart.
    const emf = json.filter((l) => l._aws);
    expect(emf.length).toBeGreaterThanOrEqual(1);
    expect(emf.some((l) => l.ColdStart === 1 && l.function_name === 'webrun-sfn-test')).toBe(true);
    expect(JSON.stringify(json)).not.toContain('private');
  });
});
