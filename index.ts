/**
 * The package's one entry point (`require('webrun-sfn')`, `import ... from 'webrun-sfn'`): the constructs a CDK app
 * composes and their props, the error names a failed execution carries, and the shape of an execution's input and
 * output. README.md, section "Use the construct in your own CDK app", shows a complete app.
 */
export { Completion, WebrunWorkflow, type WebrunDoorbell, type WebrunWorkflowFunctions, type WebrunWorkflowProps } from './lib/webrun-workflow';
export { LambdaLogLevel } from './lib/lambda-log-level';
export { WebrunObservability, type WebrunObservabilityOptions, type WebrunObservabilityProps } from './lib/observability';
export { WebrunStack, type WebrunStackProps } from './lib/webrun-stack';
export { WebrunBatch, type BatchTarget, type WebrunBatchOptions, type WebrunBatchProps } from './lib/webrun-batch';
// The constructs that the public properties above are made of (`workflow.cleanup`, `stack.triggers`).
export { SessionCleanup, type SessionCleanupProps } from './lib/session-cleanup';
export { WebrunTriggers, type WebrunTriggersProps } from './lib/triggers';
export type { ScheduleConfig, TriggerConfig, EventPatternConfig } from './lib/config';
export { WebrunErrors, type WebrunErrorName } from './lambdas/shared/contract';
export type { AnsweredGuardrail, FailureCause, ResultRef, TaskData, TaskResult, Usage, WorkflowOutput } from './lambdas/shared/contract';
export type { OutputType, SessionOptions, SiteCredentialRef, WorkflowTask } from './lambdas/shared/types';
// The input as a caller writes it (defaults left out), not as the start step has validated it.
export type { WorkflowInputDocument as WorkflowInput } from './lambdas/shared/schema/workflow-input';
