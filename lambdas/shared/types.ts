/** Types shared by the validator, the webrun client, the Lambda handlers and the local runner. */
import type { TaskData, Usage } from './contract';

/**
 * The execution input's types come from its schema (./schema/workflow-input.ts), the one place its fields are
 * declared: `SessionOptions` (`session`), `WorkflowTask` (a task, with defaults applied), `SiteCredentialRef`
 * (a task's `secrets`: Secrets Manager secrets by reference, never values) and `WorkflowInput`.
 */
export type { OutputType, SessionOptions, SiteCredentialRef, WorkflowInput, WorkflowTask } from './schema/workflow-input';

/** Resolved site credentials, as the API receives them in a task's `secrets`. Never stored or logged. */
export interface SiteCredentials {
  match: string;
  fields: Record<string, string>;
}

/** What a task is doing, normalized from every response shape the API is documented to send. */
export type TaskOutcome =
  | { kind: 'pending'; taskId: string; usage?: Usage }
  | { kind: 'completed'; taskId?: string; data: TaskData; usage?: Usage }
  | { kind: 'guardrail'; taskId?: string; question: string; guardrailType?: string }
  | { kind: 'failed'; taskId?: string; reason: string };
