/**
 * The package's one entry point (`require('webrun-sfn')`, `import ... from 'webrun-sfn'`): the constructs a CDK app
 * composes and their props, the error names a failed execution carries, and the shape of an execution's input and
 * output. docs/USE-THE-CONSTRUCT.md shows a complete app.
 */
export { Completion, WebrunWorkflow, type WebrunWorkflowProps } from './lib/webrun-workflow';
export { WebrunStack, type WebrunStackProps } from './lib/webrun-stack';
export { WebrunBatch, type WebrunBatchProps } from './lib/webrun-batch';
export type { ScheduleConfig, TriggerConfig, EventPatternConfig } from './lib/config';
export { WebrunErrors, type WebrunErrorName } from './lambdas/shared/contract';
export type { FailureCause, ResultRef, TaskData, TaskResult, Usage, WorkflowOutput } from './lambdas/shared/contract';
export type { OutputType, SessionOptions, SiteCredentialRef, WorkflowInput, WorkflowTask } from './lambdas/shared/types';
