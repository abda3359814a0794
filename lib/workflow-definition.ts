/**
 * The workflow, as one Step Functions definition in JSONPath (so aws-local-stepfunctions runs the very ASL that
 * deploys). Shape:
 *
 *   Start session ─► Next step? ─┬─ a task is pending ─► Wait before polling ─► Poll task ─► Next step?
 *                                ├─ tasks left ───────► Send task ─► Next step?
 *                                └─ all done ─────────► Terminate session ─► Workflow succeeded
 *   Send, Poll, Terminate ─(Catch States.ALL)─► Terminate session after failure ─► Workflow failed
 *       └─(its own failure)─► Report without cleanup ─► Format report ─► Workflow failed
 *   Start ─(Catch)─► Report start failure ─► Workflow failed
 *
 * The state is `{ run, loop }` (lambdas/shared/state.ts): each step gets both and replaces `loop`, so a task that
 * finishes inside send-message costs two transitions (Next step?, Send task) and no result is carried twice.
 */
import { Duration } from 'aws-cdk-lib/core';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { CompletionModes, RETRY_IDEMPOTENT_ONLY_ERRORS, RETRY_SAFE_ERRORS, StateNames, WebrunErrors, type CompletionMode } from '../lambdas/shared/contract';
import type { AnswerEvent, AskEvent, FailureEvent, FallbackEvent, SendAndWaitEvent, StartEvent, StepEvent } from '../lambdas/shared/state';

export interface WorkflowFunctions {
  readonly startSession: lambda.IFunction;
  readonly sendTask: lambda.IFunction;
  readonly pollTask: lambda.IFunction;
  readonly terminateSession: lambda.IFunction;
  readonly askPerson: lambda.IFunction;
}

export interface WorkflowTimings {
  /** How the workflow learns that a sent task ended: Wait/Poll, or a doorbell with Wait/Poll as the fallback. */
  readonly completion: CompletionMode;
  /** Wait state between poll invocations. */
  readonly pollInterval: Duration;
  /** Step Functions task timeouts, a little above each Lambda's own timeout. */
  readonly taskTimeouts: { readonly start: Duration; readonly send: Duration; readonly poll: Duration; readonly terminate: Duration };
}

/**
 * A Task state's payload for a handler event type E: one JSONPath per field of E, no more, no less (checked at
 * compile time: a field renamed in lambdas/shared/state.ts fails to compile here).
 */
export type Payload<E> = { [K in keyof E & string as `${K}.$`]-?: string };

/** Lambda refused the invocation (throttled): the function did not run, so any state may repeat it. */
const LAMBDA_THROTTLED = 'Lambda.TooManyRequestsException';
/** The function ran out of time: harmless to repeat on idempotent steps. */
const LAMBDA_TIMED_OUT = 'Sandbox.Timedout';
/**
 * How Step Functions reports a function that died without answering (out of memory, a timeout: "Handle Lambda
 * service exceptions" in the Step Functions guide), as well as Sandbox.Timedout: as harmless to repeat there.
 */
const LAMBDA_UNKNOWN = 'Lambda.Unknown';

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

/** Lambda throttled the invocation (it did not run): any step may try again, the failure report and the ask too. */
const THROTTLED_RETRY: sfn.RetryProps = {
  errors: [LAMBDA_THROTTLED],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxAttempts: 6,
  maxDelay: Duration.seconds(30),
  jitterStrategy: sfn.JitterType.FULL,
};

/**
 * All of the account's sessions are in use (HTTP 429 SESSION_LIMIT_REACHED): start-session created nothing, so it is
 * repeated, for as long as a session held by another run may take to end (10, 20, 40 s, then every 60 s: up to
 * ~58 minutes, ~29 on average with full jitter, which spreads hundreds of waiting batch items). One transition a try.
 */
export const SESSION_LIMIT_RETRY: sfn.RetryProps = {
  errors: [WebrunErrors.SessionLimitReached],
  interval: Duration.seconds(10),
  backoffRate: 2,
  maxAttempts: 60,
  maxDelay: Duration.seconds(60),
  jitterStrategy: sfn.JitterType.FULL,
};

/**
 * Transient errors on idempotent calls (poll, terminate): also 5xx, network failures, an answer that is not one of
 * the known shapes (a proxy's HTML page, a status string the docs do not list), timeouts, and a completed result
 * the result store did not take (polling again reads it again).
 */
const IDEMPOTENT_RETRY: sfn.RetryProps = {
  errors: [...RETRY_SAFE_ERRORS, ...RETRY_IDEMPOTENT_ONLY_ERRORS, WebrunErrors.UnexpectedResponse, WebrunErrors.ResultStoreError, sfn.Errors.TIMEOUT, LAMBDA_THROTTLED, LAMBDA_TIMED_OUT, LAMBDA_UNKNOWN],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxAttempts: 6,
  maxDelay: Duration.seconds(30),
  jitterStrategy: sfn.JitterType.FULL,
};

const ALL = [sfn.Errors.ALL];
const EXECUTION_ID = '$$.Execution.Id';

/**
 * `resultPath: undefined` is the ASL default ("$": the result replaces the input). It is left out rather than
 * written as "$" because aws-local-stepfunctions 3.0.0 mishandles an explicit "$" (it sets a key named "$").
 */
function invoke<E>(scope: Construct, name: string, fn: lambda.IFunction, payload: Payload<E>, resultPath: string | undefined, timeout: Duration, idempotent = true, resultSelector?: Record<string, unknown>) {
  return tasks.LambdaInvoke.jsonPath(scope, name, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    payloadResponseOnly: true,
    retryOnServiceExceptions: idempotent,
    resultPath,
    resultSelector,
    taskTimeout: sfn.Timeout.duration(timeout),
  });
}

/** The failure steps' answer, `{ error, cause }`, as the whole state: `{ report }` (the cause holds the results). */
const AS_REPORT = { 'report.$': '$' };

export function buildWorkflowDefinition(scope: Construct, fns: WorkflowFunctions, timings: WorkflowTimings): sfn.IChainable {
  const t = timings.taskTimeouts;
  const step: Payload<StepEvent> = { 'executionArn.$': EXECUTION_ID, 'run.$': '$.run', 'loop.$': '$.loop' };

  // Failure path: end the session (if any), then fail with the original error and a cause that keeps results.
  const failed = sfn.Fail.jsonPath(scope, StateNames.failed, { errorPath: '$.report.error', causePath: '$.report.cause' });
  // When the failure step itself fails (its Lambda cannot run), the state still holds everything the report needs:
  // build it here, without a Lambda. The run's inline results are bounded, so it fits the cause limit.
  const reportWithoutCleanup = sfn.Pass.jsonPath(scope, StateNames.reportWithoutCleanup, {
    resultPath: '$.unconfirmed',
    parameters: {
      'message.$': "States.Format('The workflow failed with {}, and its failure step failed too ({}): the session may still be open.', $.failure.Error, $.cleanupFailure.Error)",
      'sessionId.$': '$.run.sessionId',
      'taskIndex.$': '$.loop.index',
      'completed.$': '$.loop.results',
      sessionEnded: false,
      'cleanupError.$': '$.cleanupFailure.Error',
    },
  });
  // The state becomes the report alone, as after the failure step: the results are in its cause, and once is enough.
  const formatReport = sfn.Pass.jsonPath(scope, StateNames.formatReport, {
    parameters: { report: { 'error.$': '$.failure.Error', 'cause.$': 'States.JsonToString($.unconfirmed)' } },
  });
  reportWithoutCleanup.next(formatReport).next(failed);

  const failurePayload: Payload<FailureEvent> = { ...step, 'failure.$': '$.failure' };
  // Its handler retries the terminate itself and reports whatever that gave; only Lambda's own faults reach the Catch.
  const terminateAfterFailure = invoke(scope, StateNames.terminateAfterFailure, fns.terminateSession, failurePayload, undefined, t.terminate, true, AS_REPORT)
    .addRetry(THROTTLED_RETRY)
    .addCatch(reportWithoutCleanup, { errors: ALL, resultPath: '$.cleanupFailure' })
    .next(failed);
  const startFailurePayload: Payload<Pick<FailureEvent, 'executionArn' | 'failure'>> = { 'executionArn.$': EXECUTION_ID, 'failure.$': '$' };
  const reportStartFailure = invoke(scope, StateNames.reportStartFailure, fns.terminateSession, startFailurePayload, undefined, t.terminate, true, AS_REPORT)
    .addRetry(THROTTLED_RETRY)
    .addCatch(sfn.Fail.jsonPath(scope, StateNames.failedUnreported, { errorPath: '$.Error', causePath: '$.Cause' }), { errors: ALL, resultPath: '$.reportFailure' })
    .next(failed);
  const onFailure = { errors: ALL, resultPath: '$.failure' };

  // Start: validates the input first; its Catch replaces the state with the error (the input may not be an object).
  const startPayload: Payload<StartEvent> = { 'executionArn.$': EXECUTION_ID, 'input.$': '$' };
  const start = invoke(scope, StateNames.start, fns.startSession, startPayload, undefined, t.start, false)
    .addRetry(SESSION_LIMIT_RETRY)
    .addRetry(NON_IDEMPOTENT_RETRY)
    .addCatch(reportStartFailure, { errors: ALL });

  const poll = invoke(scope, StateNames.poll, fns.pollTask, step, '$.loop', t.poll)
    .addRetry(IDEMPOTENT_RETRY)
    .addCatch(terminateAfterFailure, onFailure);

  let send: sfn.TaskStateBase;
  let fallBack: sfn.TaskStateBase | undefined;
  if (timings.completion === CompletionModes.webhook) {
    // The send step stores the task token and sends the task with a doorbell; the execution waits here, with no
    // Lambda running, until the doorbell (confirmed by a GET) or the send step itself resumes it with the new loop.
    const payload: Payload<StepEvent> & Pick<SendAndWaitEvent, 'token'> = { ...step, token: sfn.JsonPath.taskToken };
    send = tasks.LambdaInvoke.jsonPath(scope, StateNames.send, {
      lambdaFunction: fns.sendTask,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: sfn.TaskInput.fromObject(payload),
      retryOnServiceExceptions: false,
      resultPath: '$.loop',
      // The task's maxDuration plus a grace, computed by the step before (loop.waitSeconds).
      taskTimeout: sfn.Timeout.at('$.loop.waitSeconds'),
    });
    // No doorbell in time: take the task over by polling (its record holds the task id).
    const fallbackPayload: Payload<StepEvent> & Pick<FallbackEvent, 'fallback'> = { ...step, fallback: true };
    fallBack = tasks.LambdaInvoke.jsonPath(scope, StateNames.fallBack, {
      lambdaFunction: fns.pollTask,
      payload: sfn.TaskInput.fromObject(fallbackPayload),
      payloadResponseOnly: true,
      resultPath: '$.loop',
      taskTimeout: sfn.Timeout.duration(t.poll),
    })
      .addRetry(IDEMPOTENT_RETRY)
      .addCatch(terminateAfterFailure, onFailure);
    send.addRetry(NON_IDEMPOTENT_RETRY)
      .addCatch(fallBack, { errors: [sfn.Errors.TIMEOUT], resultPath: '$.doorbellTimeout' })
      .addCatch(terminateAfterFailure, onFailure);
  } else {
    send = invoke(scope, StateNames.send, fns.sendTask, step, '$.loop', t.send, false)
      .addRetry(NON_IDEMPOTENT_RETRY)
      .addCatch(terminateAfterFailure, onFailure);
  }

  // Success: its Lambda ends the session and returns the output ({ sessionId, tasks }), replacing the state.
  const terminate = invoke(scope, StateNames.terminate, fns.terminateSession, step, undefined, t.terminate)
    .addRetry(IDEMPOTENT_RETRY)
    .addCatch(terminateAfterFailure, onFailure);
  terminate.next(new sfn.Succeed(scope, StateNames.succeeded));

  // A guardrail question no rule answers (guardrails.ask): tell a person, wait for the answer with no Lambda running,
  // then send it and follow the task on by polling. No answer in time: Webrun.GuardrailUnanswered.
  const questionUnanswered = sfn.Pass.jsonPath(scope, StateNames.questionUnanswered, {
    resultPath: '$.failure',
    parameters: {
      Error: WebrunErrors.GuardrailUnanswered,
      // Tasks count from 1 in messages, as everywhere else ($.loop.index counts from 0).
      'Cause.$': "States.Format('No one answered the guardrail question of task {} in time: {}', States.MathAdd($.loop.index, 1), $.loop.question.text)",
    },
  });
  questionUnanswered.next(terminateAfterFailure);
  const askPayload: Payload<StepEvent> & Pick<AskEvent, 'token'> = { ...step, token: sfn.JsonPath.taskToken };
  const askPerson = tasks.LambdaInvoke.jsonPath(scope, StateNames.askPerson, {
    lambdaFunction: fns.askPerson,
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    payload: sfn.TaskInput.fromObject(askPayload),
    retryOnServiceExceptions: true,
    resultPath: '$.answer',
    taskTimeout: sfn.Timeout.at('$.loop.question.timeoutSeconds'),
  })
    .addRetry(THROTTLED_RETRY)
    .addCatch(questionUnanswered, { errors: [sfn.Errors.TIMEOUT], resultPath: '$.unanswered' })
    .addCatch(terminateAfterFailure, onFailure);
  const answerPayload: Payload<AnswerEvent> = { ...step, 'answer.$': '$.answer' };
  // It sends the person's answer: repeated only when the call was certainly refused (as the send step is).
  const answerQuestion = invoke(scope, StateNames.answerQuestion, fns.pollTask, answerPayload, '$.loop', t.poll, false)
    .addRetry(NON_IDEMPOTENT_RETRY)
    .addCatch(terminateAfterFailure, onFailure);
  askPerson.next(answerQuestion);

  const wait = sfn.Wait.jsonPath(scope, StateNames.wait, { time: sfn.WaitTime.duration(timings.pollInterval) });
  const next = sfn.Choice.jsonPath(scope, StateNames.next)
    .when(sfn.Condition.stringEquals('$.loop.status', 'pending'), wait)
    .when(sfn.Condition.stringEquals('$.loop.status', 'question'), askPerson)
    .when(sfn.Condition.numberLessThanJsonPath('$.loop.index', '$.run.taskCount'), send)
    .otherwise(terminate);
  wait.next(poll);
  poll.next(next);
  send.next(next);
  fallBack?.next(next);
  answerQuestion.next(next);

  return start.next(next);
}
