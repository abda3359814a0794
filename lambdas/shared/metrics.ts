/**
 * The workflow's custom CloudWatch metrics: names shared by the handlers that emit them (through the
 * `WorkflowMetrics` dependency, Powertools Metrics / EMF in Lambda, nothing locally) and by the alarms and the
 * dashboard in lib/observability.ts.
 */

export const METRICS_NAMESPACE = 'WebrunSfn';
/** Powertools' `service` dimension. */
export const METRICS_SERVICE = 'webrun-sfn';
/** A second dimension keeps two stacks in one account and region apart: the stack name. */
export const METRICS_STACK_DIMENSION = 'stack';

export const WorkflowMetricNames = {
  sessionsStarted: 'SessionsStarted',
  tasksCompleted: 'TasksCompleted',
  tasksFailed: 'TasksFailed',
  guardrailsTriggered: 'GuardrailsTriggered',
  pollAttempts: 'PollAttempts',
  /** Milliseconds from sending a task to seeing it completed. */
  taskDuration: 'TaskDuration',
  sessionsTerminated: 'SessionsTerminated',
} as const;

export type WorkflowMetricName = (typeof WorkflowMetricNames)[keyof typeof WorkflowMetricNames];

export interface WorkflowMetrics {
  /** Adds a data point: a count, or milliseconds for `TaskDuration`. */
  add(name: WorkflowMetricName, value: number): void;
}

export const noMetrics: WorkflowMetrics = { add: () => {} };
