/** Types shared by the validator, the webrun client, the Lambda handlers and the local runner. */
import type { TaskData, Usage } from './contract';

export type OutputType = 'text' | 'structured_json' | 'structured_csv';

/** Session options accepted in the execution input (`session`). */
export interface SessionOptions {
  startingPoint?: string;
  profileId?: string;
  avoidDomains?: string[];
  maxInputTokens?: number;
  maxOutputTokens?: number;
}

/**
 * Site credentials by reference: the agent may type the login fields held by this Secrets Manager secret (a name
 * or ARN under the `webrun-sfn/` prefix) on pages matching `match`. The send step reads the secret, so its
 * values never enter execution input, state or history.
 */
export interface SiteCredentialRef {
  match: string;
  secret: string;
}

/** Resolved site credentials, as the API receives them in a task's `secrets`. Never stored or logged. */
export interface SiteCredentials {
  match: string;
  fields: Record<string, string>;
}

/** One task of the execution input, after validation and defaults. */
export interface WorkflowTask {
  taskDetails: string;
  /** Milliseconds the agent may spend on the task: 1,000 to 300,000 (the API's default and maximum). */
  maxDuration: number;
  startingPoint?: string;
  avoidDomains?: string[];
  maxInputTokens?: number;
  maxOutputTokens?: number;
  outputType?: OutputType;
  outputSchema?: Record<string, unknown>;
  files?: string[];
  secrets?: SiteCredentialRef[];
}

/** The execution input, validated (`validateWorkflowInput`). */
export interface WorkflowInput {
  session: SessionOptions;
  tasks: WorkflowTask[];
}

/** What a task is doing, normalized from every response shape the API is documented to send. */
export type TaskOutcome =
  | { kind: 'pending'; taskId: string; usage?: Usage }
  | { kind: 'completed'; taskId?: string; data: TaskData; usage?: Usage }
  | { kind: 'guardrail'; taskId?: string; question: string; guardrailType?: string }
  | { kind: 'failed'; taskId?: string; reason: string };
