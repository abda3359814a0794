/**
 * The workflow's custom CloudWatch metrics: names shared by the handlers that emit them (through the
 * `WorkflowMetrics` dependency, Powertools Metrics / EMF in Lambda, nothing locally) and by the alarms and the
 * dashboard in lib/observability.ts.
 */

import type { WorkflowMetricName } from './contract';

export interface WorkflowMetrics {
  /** Adds a data point: a count, or milliseconds for `TaskDuration`. */
  add(name: WorkflowMetricName, value: number): void;
}

export const noMetrics: WorkflowMetrics = { add: () => {} };
