/**
 * The one Lambda entry point. Every function of the construct deploys this file's bundle and runs one of its exports,
 * named by its Lambda handler (`index.<export>`); the names are `WEBRUN_HANDLERS` in ./shared/contract.ts. The steps
 * share nearly all their code, so one bundle is built, shipped in the package and uploaded once, not one per function.
 *
 * - `startSession`: Start session: validates the input, starts a webrun session and records it.
 * - `sendTask`: Send task: sends one task to the session (with a doorbell when completion is by webhook).
 * - `pollTask`: Poll task (and Fall back to polling, Answer the question): follows a pending task to its end.
 * - `terminateSession`: Terminate session: ends the session, and reports the run's output or its failure.
 * - `askPerson`: Ask a person: tells a person (EventBridge, optionally SNS) that a guardrail question waits.
 * - `receiveDoorbell`: behind the public Function URL the webrun API rings when a task ends (completion by webhook).
 * - `cleanupSession`: invoked by EventBridge when an execution ends ABORTED, TIMED_OUT or FAILED; ends its session.
 *
 * The first five are the workflow steps of ./shared/handlers.ts, bound to AWS by ./shared/lambda-runtime.ts.
 */
import type { LambdaFunctionURLEvent } from 'aws-lambda';
import { makeCleanup, type CleanupHandler, type ExecutionStatusChangeEvent } from './shared/cleanup';
import { instrument, lambdaDeps, lambdaHandler, lambdaHandlers } from './shared/lambda-runtime';

export const startSession = lambdaHandler('startSession');
export const sendTask = lambdaHandler('sendTask');
export const pollTask = lambdaHandler('pollTask');
export const terminateSession = lambdaHandler('terminateSession');
export const askPerson = lambdaHandler('askPerson');

/**
 * The doorbell receiver: see `receiveDoorbell` in ./shared/handlers.ts. It answers quickly, says nothing beyond
 * whether the ring was taken, and never echoes it.
 */
export const receiveDoorbell = instrument('receiveDoorbell', async (event, ctx) => {
  const request = event as LambdaFunctionURLEvent;
  const headers = Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const answer = await lambdaHandlers().receiveDoorbell({ method: request.requestContext?.http?.method ?? 'GET', path: request.rawPath ?? '/', headers }, ctx);
  return { statusCode: answer.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(answer.body) };
});

let cleanup: CleanupHandler | undefined;
/**
 * The session cleanup: see `makeCleanup` in ./shared/cleanup.ts. The webrun client and the session records come from
 * the same factory as the workflow steps' (API key from Secrets Manager, cached per warm container).
 */
export const cleanupSession = instrument('cleanupSession', async (event) => {
  if (!cleanup) {
    const { client, sessions, log, metrics } = lambdaDeps();
    cleanup = makeCleanup({ client, sessions, log, metrics });
  }
  return cleanup(event as ExecutionStatusChangeEvent);
});
