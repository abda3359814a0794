/**
 * The workflow, as one Step Functions definition in JSONPath (so aws-local-stepfunctions runs the very ASL that
 * deploys). Shape:
 *
 *   Start session ─► More tasks? ─► Send task ─► Task finished? ─► Record result ─► More tasks? …
 *                        │                          │    ▲
 *                        │                          ▼    │
 *                        │              Wait before polling ─► Poll task
 *                        └─► Terminate session ─► Collect results ─► Workflow succeeded
 *   every Task after Start ─(Catch States.ALL)─► Terminate session after failure ─► Workflow failed
 *   Start ─(Catch)─► Report start failure ─► Workflow failed
 */
import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { RETRY_IDEMPOTENT_ONLY_ERRORS, RETRY_SAFE_ERRORS, StateNames } from '../lambdas/shared/contract';

export interface WorkflowFunctions {
  readonly startSession: lambda.IFunction;
  readonly sendTask: lambda.IFunction;
  readonly pollTask: lambda.IFunction;
  readonly terminateSession: lambda.IFunction;
}

export interface WorkflowTimings {
  /** Wait state between poll invocations. */
  readonly pollInterval: Duration;
  /** Step Functions task timeouts, a little above each Lambda's own timeout. */
  readonly taskTimeouts: { readonly start: Duration; readonly send: Duration; readonly poll: Duration; readonly terminate: Duration };
}

/** Lambda refused the invocation (throttled): the function did not run, so any state may repeat it. */
const LAMBDA_THROTTLED = 'Lambda.TooManyRequestsException';

/**
 * Transient errors on calls that must not run twice (start-session, send-message): only requests that were
 * certainly refused. Lambda service exceptions are not retried here: the function may already have run.
 */
const NON_IDEMPOTENT_RETRY: sfn.RetryProps = {
  errors: [...RETRY_SAFE_ERRORS, LAMBDA_THROTTLED],
  interval: Duration.seconds(5),
  backoffRate: 2,
  maxAttempts: 4,
  maxDelay: Duration.seconds(60),
  jitterStrategy: sfn.JitterType.FULL,
};

/** Transient errors on idempotent calls (poll, terminate): also 5xx, network failures and task timeouts. */
const IDEMPOTENT_RETRY: sfn.RetryProps = {
  errors: [...RETRY_SAFE_ERRORS, ...RETRY_IDEMPOTENT_ONLY_ERRORS, sfn.Errors.TIMEOUT, LAMBDA_THROTTLED],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxAttempts: 6,
  maxDelay: Duration.seconds(30),
  jitterStrategy: sfn.JitterType.FULL,
};

const ALL = [sfn.Errors.ALL];

/**
 * `resultPath: undefined` is the ASL default ("$": the result replaces the input). It is left out rather than
 * written as "$" because aws-local-stepfunctions 3.0.0 mishandles an explicit "$" (it sets a key named "$").
 */
function invoke(scope: Construct, name: string, fn: lambda.IFunction, payload: Record<string, unknown>, resultPath: string | undefined, timeout: Duration, idempotent = true) {
  return tasks.LambdaInvoke.jsonPath(scope, name, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    payloadResponseOnly: true,
    retryOnServiceExceptions: idempotent,
    resultPath,
    taskTimeout: sfn.Timeout.duration(timeout),
  });
}

export function buildWorkflowDefinition(scope: Construct, fns: WorkflowFunctions, timings: WorkflowTimings): sfn.IChainable {
  const t = timings.taskTimeouts;
  // executionArn is a log correlation key only: the handlers never act on it.
  const loopState = {
    'executionArn.$': '$$.Execution.Id',
    'sessionId.$': '$.sessionId',
    'index.$': '$.index',
    'results.$': '$.results',
  };

  // Failure path: end the session (if any), then fail with the original error and a cause that keeps results.
  const failed = sfn.Fail.jsonPath(scope, StateNames.failed, { errorPath: '$.report.error', causePath: '$.report.cause' });
  const terminateAfterFailure = invoke(scope, StateNames.terminateAfterFailure, fns.terminateSession, { ...loopState, 'failure.$': '$.failure' }, '$.report', t.terminate)
    .addRetry(IDEMPOTENT_RETRY)
    .addCatch(sfn.Fail.jsonPath(scope, StateNames.failedCleanupUnconfirmed, { errorPath: '$.failure.Error', causePath: '$.failure.Cause' }), { errors: ALL, resultPath: '$.cleanupFailure' })
    .next(failed);
  const reportStartFailure = invoke(scope, StateNames.reportStartFailure, fns.terminateSession, { 'executionArn.$': '$$.Execution.Id', 'failure.$': '$' }, '$.report', t.terminate)
    .addRetry(IDEMPOTENT_RETRY)
    .addCatch(sfn.Fail.jsonPath(scope, StateNames.failedUnreported, { errorPath: '$.Error', causePath: '$.Cause' }), { errors: ALL, resultPath: '$.reportFailure' })
    .next(failed);
  const onFailure = { errors: ALL, resultPath: '$.failure' };

  // Start: validates the input first; its Catch replaces the state with the error (the input may not be an object).
  const start = invoke(scope, StateNames.start, fns.startSession, { 'executionArn.$': '$$.Execution.Id', 'input.$': '$' }, undefined, t.start, false)
    .addRetry(NON_IDEMPOTENT_RETRY)
    .addCatch(reportStartFailure, { errors: ALL });

  const send = invoke(scope, StateNames.send, fns.sendTask, { ...loopState, 'task.$': 'States.ArrayGetItem($.tasks, $.index)' }, '$.progress', t.send, false)
    .addRetry(NON_IDEMPOTENT_RETRY)
    .addCatch(terminateAfterFailure, onFailure);

  const poll = invoke(scope, StateNames.poll, fns.pollTask, {
    ...loopState,
    'taskId.$': '$.progress.taskId',
    'attempt.$': '$.progress.attempt',
    'maxAttempts.$': '$.progress.maxAttempts',
    'sentAt.$': '$.progress.sentAt',
    'task.$': 'States.ArrayGetItem($.tasks, $.index)',
  }, '$.progress', t.poll)
    .addRetry(IDEMPOTENT_RETRY)
    .addCatch(terminateAfterFailure, onFailure);

  const terminate = invoke(scope, StateNames.terminate, fns.terminateSession, { 'executionArn.$': '$$.Execution.Id', 'sessionId.$': '$.sessionId' }, sfn.JsonPath.DISCARD, t.terminate)
    .addRetry(IDEMPOTENT_RETRY)
    .addCatch(terminateAfterFailure, onFailure);

  const record = sfn.Pass.jsonPath(scope, StateNames.record, {
    parameters: {
      'sessionId.$': '$.sessionId',
      'tasks.$': '$.tasks',
      'taskCount.$': '$.taskCount',
      'index.$': 'States.MathAdd($.index, 1)',
      'results.$': '$.progress.results',
    },
  });
  const wait = sfn.Wait.jsonPath(scope, StateNames.wait, { time: sfn.WaitTime.duration(timings.pollInterval) });
  const finished = sfn.Choice.jsonPath(scope, StateNames.finished)
    .when(sfn.Condition.stringEquals('$.progress.status', 'completed'), record)
    .otherwise(wait);
  wait.next(poll);
  poll.next(finished);
  send.next(finished);

  const collect = sfn.Pass.jsonPath(scope, StateNames.collect, { parameters: { 'sessionId.$': '$.sessionId', 'tasks.$': '$.results' } });
  terminate.next(collect).next(new sfn.Succeed(scope, StateNames.succeeded));

  const moreTasks = sfn.Choice.jsonPath(scope, StateNames.moreTasks)
    .when(sfn.Condition.numberLessThanJsonPath('$.index', '$.taskCount'), send)
    .otherwise(terminate);
  record.next(moreTasks);

  return start.next(moreTasks);
}
