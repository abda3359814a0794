/**
 * Runs the synthesized workflow in-process with aws-local-stepfunctions. Each Task state calls the real Lambda
 * handler; only the API key source differs (an argument here, Secrets Manager in AWS). Lambda's error
 * serialization is mimicked so the Catch branches see what they see in AWS.
 */
import './polyfill';
import { randomUUID } from 'node:crypto';
import { StateMachine } from 'aws-local-stepfunctions';
import { WebrunErrors } from '../lambdas/shared/contract';
import { validateWorkflowInput } from '../lambdas/shared/input';
import { makeHandlers, type HandlerDeps, type Log, type WorkflowHandlers } from '../lambdas/shared/handlers';
import type { SiteCredentialResolver } from '../lambdas/shared/site-credentials';
import type { WorkflowOutput } from '../lambdas/shared/types';
import { WebrunClient } from '../lambdas/shared/webrun-client';
import type { WebrunWorkflowProps } from '../lib/webrun-workflow';
import { ProgressTracker, type StateEvent } from './progress';
import { synthesizeLocalWorkflow, type LocalWorkflow } from './asl';

export interface LocalRunOptions {
  input: unknown;
  baseUrl: string;
  /** The local stand-in for the Secrets Manager secret. */
  apiKey: string;
  /** The local stand-in for the site-credential secrets a task names. @default none: such a task fails */
  siteCredentials?: SiteCredentialResolver;
  /** Multiplies every Wait state, Retry interval and in-Lambda pause; 0 = do not wait. @default 1 */
  waitScale?: number;
  /** Progress lines for a person (stderr in the CLI). */
  onProgress?: (line: string) => void;
  /** Aborting stops the execution like StopExecution; the session is then terminated by the runner. */
  signal?: AbortSignal;
  /** Construct props to synthesize with (e.g. another poll interval). */
  workflowProps?: WebrunWorkflowProps;
  /** Reuse an already synthesized workflow (tests run many executions). */
  workflow?: LocalWorkflow;
  /** Where the handlers' structured log lines go (the Lambda logger's stand-in). @default discarded */
  log?: Log;
  /** Every state event of the execution, as the progress display sees it (the stand-in for execution history). */
  onStateEvent?: (event: StateEvent) => void;
}

export interface LocalRunSummary {
  status: 'SUCCEEDED' | 'FAILED';
  output?: WorkflowOutput;
  error?: { name: string; cause: string };
  sessionId?: string;
  stats: { stateTransitions: number; lambdaInvocations: number; wallMs: number };
}

/** Mirrors how Lambda reports a thrown error to Step Functions: the name is the error, the cause a JSON envelope. */
function asLambdaError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const envelope = JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: [] });
  const lambdaError = new Error(envelope);
  lambdaError.name = e.name;
  return lambdaError;
}

/** The executor's event log entries (its types are not exported). */
type ExecutorEvent = {
  type: string;
  timestamp: number;
  state?: { name: string; input: unknown; output?: unknown };
  Error?: string;
  Cause?: unknown;
  retry?: { attempt: number };
};

function toStateEvent(e: ExecutorEvent): StateEvent | undefined {
  const at = e.timestamp;
  if (!e.state) return undefined;
  switch (e.type) {
    case 'StateEntered':
      return { type: 'entered', state: e.state.name, at, input: e.state.input };
    case 'StateExited':
      return { type: 'exited', state: e.state.name, at, input: e.state.input, output: e.state.output };
    case 'StateRetried':
      return { type: 'retried', state: e.state.name, at };
    case 'StateFailed':
      return { type: 'failed', state: e.state.name, at, error: e.Error, cause: String(e.Cause ?? '') };
    case 'StateCaught':
      return { type: 'caught', state: e.state.name, at };
    default:
      return undefined;
  }
}

const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };

export async function runLocalWorkflow(options: LocalRunOptions): Promise<LocalRunSummary> {
  const started = Date.now();
  const scale = options.waitScale ?? 1;
  if (!(scale >= 0) || !Number.isFinite(scale)) throw new RangeError(`waitScale must be a finite number >= 0, got ${scale}`);
  if (!options.input) {
    // aws-local-stepfunctions treats a falsy input (null, false, 0, "") as "no value" when it applies
    // `"input.$": "$"` and fails with States.Runtime; refuse it here with the error the start state would raise.
    const cause = { message: invalidInputMessage(options.input), sessionId: null, taskIndex: null, completed: [] };
    return { status: 'FAILED', error: { name: WebrunErrors.InvalidInput, cause: JSON.stringify(cause) }, stats: { stateTransitions: 0, lambdaInvocations: 0, wallMs: Date.now() - started } };
  }
  const workflow = options.workflow ?? synthesizeLocalWorkflow(options.workflowProps);
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms * scale));
  const deps: HandlerDeps = {
    client: async () => new WebrunClient({ baseUrl: options.baseUrl, apiKey: options.apiKey, sleep }),
    siteCredentials: options.siteCredentials,
    pollPlan: workflow.pollPlan,
    sleep,
    log: options.log ?? silentLog,
  };
  const handlers = makeHandlers(deps);
  let lambdaInvocations = 0;
  const taskResourceLocalHandlers = Object.fromEntries(
    Object.entries(workflow.taskHandlers).map(([stateName, handlerName]) => [
      stateName,
      async (input: unknown) => {
        lambdaInvocations++;
        try {
          return (await (handlers[handlerName] as (e: unknown) => Promise<unknown>)(input)) as never;
        } catch (err) {
          throw asLambdaError(err);
        }
      },
    ]),
  );
  const { waitTimeOverrides, retryIntervalOverrides } = scaledOverrides(workflow, scale);

  const write = options.onProgress ?? (() => {});
  const tracker = new ProgressTracker(write);
  const machine = new StateMachine(workflow.definition as never, { validationOptions: { checkArn: false } });
  // The Context Object fields the definition reads ($$.Execution.Id, a log correlation key), shaped as in AWS.
  const executionName = `local-${randomUUID()}`;
  const context = { Execution: { Id: `arn:aws:states:local:000000000000:execution:webrun-sfn-local:${executionName}`, Name: executionName } };
  const execution = machine.run(options.input as never, {
    overrides: { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides },
    context,
  });
  const onAbort = () => execution.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) execution.abort();

  const following = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<ExecutorEvent>) {
      const stateEvent = toStateEvent(event);
      if (!stateEvent) continue;
      options.onStateEvent?.(stateEvent);
      tracker.handle(stateEvent);
    }
  })();

  let summary: Omit<LocalRunSummary, 'stats' | 'sessionId'>;
  try {
    const output = (await execution.result) as WorkflowOutput | null;
    summary = output === null
      ? { status: 'FAILED', error: { name: 'Webrun.Aborted', cause: 'The execution was stopped before it finished.' } }
      : { status: 'SUCCEEDED', output };
  } catch (err) {
    summary = { status: 'FAILED', error: executionError(err) };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  await following.catch(() => {});

  // An aborted or timed-out execution skips every Catch: end the session here, as the cleanup Lambda does in AWS.
  if (tracker.sessionId && !tracker.terminated) {
    try {
      lambdaInvocations++;
      const outcome = await handlers.terminateSession({ sessionId: tracker.sessionId });
      write(`  session ${tracker.sessionId} ${outcome.alreadyEnded ? 'had already ended' : 'terminated'} by the runner's cleanup`);
    } catch (err) {
      write(`  could not terminate session ${tracker.sessionId}: ${(err as Error).message}`);
    }
  }
  return {
    ...summary,
    sessionId: summary.output?.sessionId ?? tracker.sessionId,
    stats: { stateTransitions: tracker.stateTransitions, lambdaInvocations, wallMs: Date.now() - started },
  };
}

function invalidInputMessage(input: unknown): string {
  try {
    validateWorkflowInput(input);
  } catch (err) {
    return (err as Error).message;
  }
  return 'input: is not valid';
}

function executionError(err: unknown): { name: string; cause: string } {
  const e = err as { name?: string; message?: string; cause?: { name?: string; message?: string } };
  if (e?.name === 'ExecutionAbortedError') return { name: 'Webrun.Aborted', cause: 'The execution was stopped before it finished.' };
  if (e?.name === 'ExecutionTimeoutError') return { name: 'States.Timeout', cause: 'The execution reached its timeout.' };
  if (e?.name === 'ExecutionError' && e.cause) return { name: e.cause.name ?? 'Error', cause: e.cause.message ?? '' };
  return { name: e?.name ?? 'Error', cause: e?.message ?? String(err) };
}

/** Wait and Retry overrides for a wait scale; at 1 the definition's own timings (with backoff and jitter) apply. */
export function scaledOverrides(workflow: LocalWorkflow, scale: number) {
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number[]> = {};
  if (scale === 1) return { waitTimeOverrides, retryIntervalOverrides };
  for (const [name, state] of Object.entries(workflow.definition.States)) {
    if (state.Type === 'Wait' && typeof state.Seconds === 'number') waitTimeOverrides[name] = state.Seconds * 1000 * scale;
    if (state.Retry) retryIntervalOverrides[name] = state.Retry.map((r) => (r.IntervalSeconds ?? 1) * 1000 * scale);
  }
  return { waitTimeOverrides, retryIntervalOverrides };
}

export type { WorkflowHandlers };
