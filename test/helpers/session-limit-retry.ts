/**
 * A LOCAL COPY of the retry that "Start session" needs for SESSION_LIMIT_REACHED, for tests and the batch bench
 * only, until lib/workflow-definition.ts has it (see docs/BATCHES.md, "Session limit"). It is the Retry requested
 * for that state, put first in its Retry list. While the webrun client reports every HTTP 429 as Webrun.RateLimited
 * (lambdas/shared/webrun-client.ts `httpError` checks the status before the code), the copy matches that name too.
 * Once the definition retries Webrun.SessionLimitReached this helper returns the workflow as it is (and the tests
 * then also need the client to name the error so), and should be deleted.
 */
import { StateNames, WebrunErrors } from '../../lambdas/shared/contract';
import { localWorkflow, type AslState, type LocalWorkflow } from '../../local/workflow';

export const SESSION_LIMIT_RETRY = {
  ErrorEquals: [WebrunErrors.SessionLimitReached],
  IntervalSeconds: 10,
  BackoffRate: 2,
  MaxAttempts: 60,
  MaxDelaySeconds: 60,
  JitterStrategy: 'FULL',
} as const;

type Retrier = NonNullable<AslState['Retry']>[number];

export function withSessionLimitRetry(workflow: LocalWorkflow): LocalWorkflow {
  const start = workflow.definition.States[StateNames.start];
  const retries: Retrier[] = start.Retry ?? [];
  if (retries.some((r) => r.ErrorEquals.includes(WebrunErrors.SessionLimitReached))) return workflow;
  const definition = structuredClone(workflow.definition);
  const retry: Retrier = { ...SESSION_LIMIT_RETRY, ErrorEquals: [WebrunErrors.SessionLimitReached, WebrunErrors.RateLimited] };
  definition.States[StateNames.start].Retry = [retry, ...retries];
  const { machine: _machine, ...description } = workflow;
  return localWorkflow({ ...description, definition }, false);
}
