/**
 * The workflow without its "Start session" retry of Webrun.SessionLimitReached: the control that shows the retry
 * (lib/workflow-definition.ts SESSION_LIMIT_RETRY) is what lets batch items wait for a free session.
 */
import { StateNames, WebrunErrors } from '../../lambdas/shared/contract';
import { localWorkflow, type LocalWorkflow } from '../../local/workflow';

export function withoutSessionLimitRetry(workflow: LocalWorkflow): LocalWorkflow {
  const definition = structuredClone(workflow.definition);
  const start = definition.States[StateNames.start];
  start.Retry = (start.Retry ?? []).filter((r) => !r.ErrorEquals.includes(WebrunErrors.SessionLimitReached));
  const { machine: _machine, ...description } = workflow;
  return localWorkflow({ ...description, definition }, false);
}
