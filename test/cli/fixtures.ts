/**
 * Execution histories shaped like GetExecutionHistory's, for the workflow's own states: a run that polls once and
 * succeeds, and one whose task is retried, then fails and is caught.
 */
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { StateNames } from '../../lambdas/shared/contract';

export const REGION = 'eu-west-1';
export const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:123456789012:stateMachine:WebrunWorkflow`;
export const EXECUTION_ARN = `arn:aws:states:${REGION}:123456789012:execution:WebrunWorkflow:run-1`;
export const INPUT = { session: { startingPoint: 'https://example.com' }, tasks: [{ taskDetails: 'Open the page' }] };

type Step = Omit<HistoryEvent, 'id' | 'timestamp'>;

/** Numbers the steps and stamps them one second apart from `start`. */
export function history(steps: Step[], start = Date.parse('2030-01-01T09:00:00Z')): HistoryEvent[] {
  return steps.map((s, i) => ({ ...s, id: i + 1, previousEventId: i, timestamp: new Date(start + i * 1000) }) as HistoryEvent);
}

const entered = (type: string, name: string, input: unknown, withData = true): Step =>
  ({ type: `${type}StateEntered`, stateEnteredEventDetails: { name, ...(withData ? { input: JSON.stringify(input) } : { inputDetails: { truncated: false } }) } }) as Step;
const exited = (type: string, name: string, output: unknown, withData = true): Step =>
  ({ type: `${type}StateExited`, stateExitedEventDetails: { name, ...(withData ? { output: JSON.stringify(output) } : {}) } }) as Step;
const task = (name: string, input: unknown, output: unknown, withData = true): Step[] => [
  entered('Task', name, input, withData),
  { type: 'TaskScheduled', taskScheduledEventDetails: { resourceType: 'lambda', resource: 'invoke', region: REGION, parameters: '{}' } } as Step,
  { type: 'TaskStarted' } as Step,
  { type: 'TaskSucceeded' } as Step,
  exited('Task', name, output, withData),
];

const run = { sessionId: 's-1', tasks: [{ taskDetails: 'Open the page', maxDuration: 300000 }], taskCount: 1 };
const state = { run, loop: { index: 0, status: 'ready', results: [] as unknown[] } };
const result = { index: 0, taskId: 't-1', status: 'completed', result: { message: 'done' } };
const pending = { run, loop: { index: 0, status: 'pending', pending: { taskId: 't-1', attempt: 0, maxAttempts: 15, sentAt: 0 }, results: [] } };
const done = { run, loop: { index: 1, status: 'ready', results: [result] } };
export const OUTPUT = { sessionId: 's-1', tasks: [result] };

export function succeededHistory(withData = true): HistoryEvent[] {
  return history([
    { type: 'ExecutionStarted' },
    ...task(StateNames.start, { input: INPUT }, state, withData),
    entered('Choice', StateNames.next, state, withData),
    exited('Choice', StateNames.next, state, withData),
    ...task(StateNames.send, state, pending, withData),
    entered('Choice', StateNames.next, pending, withData),
    exited('Choice', StateNames.next, pending, withData),
    entered('Wait', StateNames.wait, pending, withData),
    exited('Wait', StateNames.wait, pending, withData),
    ...task(StateNames.poll, pending, done, withData),
    entered('Choice', StateNames.next, done, withData),
    exited('Choice', StateNames.next, done, withData),
    ...task(StateNames.terminate, done, OUTPUT, withData),
    entered('Succeed', StateNames.succeeded, OUTPUT, withData),
    { type: 'ExecutionSucceeded', executionSucceededEventDetails: withData ? { output: JSON.stringify(OUTPUT) } : {} } as Step,
  ]);
}

export const FAILURE_CAUSE = JSON.stringify({ message: 'Task 1 failed: the page did not load', sessionId: 's-1', taskIndex: 0, completed: [], sessionEnded: true });

export function failedHistory(): HistoryEvent[] {
  const failure = { Error: 'Webrun.TaskFailed', Cause: 'Task 1 failed: the page did not load' };
  return history([
    { type: 'ExecutionStarted' },
    ...task(StateNames.start, { input: INPUT }, state),
    entered('Task', StateNames.send, state),
    { type: 'TaskScheduled' } as Step,
    { type: 'TaskFailed', taskFailedEventDetails: { error: 'Webrun.RateLimited', cause: 'slow down' } } as Step,
    { type: 'TaskScheduled' } as Step,
    { type: 'TaskFailed', taskFailedEventDetails: { error: 'Webrun.TaskFailed', cause: failure.Cause } } as Step,
    exited('Task', StateNames.send, { ...state, failure }),
    ...task(StateNames.terminateAfterFailure, { ...state, failure }, { ...state, failure, report: { error: 'Webrun.TaskFailed', cause: FAILURE_CAUSE } }),
    entered('Fail', StateNames.failed, {}),
    { type: 'ExecutionFailed', executionFailedEventDetails: { error: 'Webrun.TaskFailed', cause: FAILURE_CAUSE } } as Step,
  ]);
}

/**
 * A run stopped (or timed out, or past a quota) after its task completed and before it ended the session: the
 * history ends without the workflow's failure step, `ending` being ExecutionAborted, ExecutionTimedOut or ExecutionFailed.
 */
export function endedEarlyHistory(ending: Step): HistoryEvent[] {
  const all = succeededHistory();
  const polled = all.findIndex((e) => e.type === 'TaskStateExited' && e.stateExitedEventDetails?.name === StateNames.poll);
  return history([...all.slice(0, polled + 1).map(({ id: _id, previousEventId: _p, timestamp: _t, ...step }) => step), ending]);
}
export const KEPT_RESULT = result;
