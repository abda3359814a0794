import type { LambdaFunctionURLEvent } from 'aws-lambda';
import { instrument, lambdaHandlers } from './shared/lambda-runtime';

/**
 * Lambda entry point behind the public Function URL the webrun API rings when a task ends: see `receiveDoorbell`
 * in ./shared/handlers.ts. It answers quickly, says nothing beyond whether the ring was taken, and never echoes it.
 */
export const handler = instrument('receiveDoorbell', async (event, ctx) => {
  const request = event as LambdaFunctionURLEvent;
  const headers = Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const answer = await lambdaHandlers().receiveDoorbell({ method: request.requestContext?.http?.method ?? 'GET', path: request.rawPath ?? '/', headers }, ctx);
  return { statusCode: answer.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(answer.body) };
});
