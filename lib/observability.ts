/**
 * What an operator watches: alarms on failed and timed-out executions, on session cleanup errors and on starts
 * that landed in the dead-letter queue, all to one SNS topic (optionally with an e-mail subscription), and a
 * small CloudWatch dashboard over the Step Functions, Lambda and custom workflow metrics.
 */
import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, METRICS_SERVICE, METRICS_STACK_DIMENSION, WorkflowMetricNames, type WorkflowMetricName } from '../lambdas/shared/contract';

export interface WebrunObservabilityProps {
  readonly stateMachine: sfn.IStateMachine;
  /** Every Lambda of the workflow, for the dashboard's error and duration graphs. */
  readonly functions: Record<string, lambda.IFunction>;
  /**
   * The functions whose errors mean a session may still be open and billed (the terminate step, and the
   * cleanup that ends sessions of timed-out or stopped executions).
   */
  readonly cleanupFunctions: readonly lambda.IFunction[];
  /** Where failed scheduled and triggered starts land. @default no dead-letter alarm */
  readonly deadLetterQueue?: sqs.IQueue;
  /** Subscribed to the alarm topic by e-mail (the address must confirm the subscription). @default none */
  readonly alarmEmail?: string;
  /** Alarms made elsewhere (e.g. the session cleanup's dead letters) that should notify the topic too. @default none */
  readonly extraAlarms?: readonly cloudwatch.Alarm[];
  /** An alarm when the tasks of the last 24 hours cost more than this many US dollars (metric CostUsd). @default none */
  readonly costAlarmUsd?: number;
  /** The period alarms evaluate. @default Duration.minutes(5) */
  readonly period?: Duration;
}

export class WebrunObservability extends Construct {
  /** Every alarm notifies this topic: subscribe a chat or paging integration to it. */
  public readonly alarmTopic: sns.Topic;
  public readonly alarms: {
    readonly executionsFailed: cloudwatch.Alarm;
    readonly executionsTimedOut: cloudwatch.Alarm;
    readonly cleanupErrors: cloudwatch.Alarm;
    readonly startFailures?: cloudwatch.Alarm;
    readonly cost?: cloudwatch.Alarm;
  };
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: WebrunObservabilityProps) {
    super(scope, id);
    if (props.cleanupFunctions.length === 0) throw new Error('WebrunObservability: cleanupFunctions must name at least one function');
    const period = props.period ?? Duration.minutes(5);
    const stackName = Stack.of(this).stackName;

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: 'webrun-sfn alarms', enforceSSL: true });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    const notify = new cwActions.SnsAction(this.alarmTopic);

    const atLeastOnce = (alarmId: string, metric: cloudwatch.IMetric, description: string) => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${stackName}: ${description}`,
      });
      alarm.addAlarmAction(notify);
      return alarm;
    };
    const sum = { period, statistic: cloudwatch.Stats.SUM };

    const cleanupErrors = props.cleanupFunctions.length === 1
      ? props.cleanupFunctions[0].metricErrors(sum)
      : new cloudwatch.MathExpression({
        expression: props.cleanupFunctions.map((_, i) => `FILL(e${i}, 0)`).join(' + '),
        usingMetrics: Object.fromEntries(props.cleanupFunctions.map((fn, i) => [`e${i}`, fn.metricErrors(sum)])),
        label: 'Cleanup errors',
        period,
      });
    const custom = (name: WorkflowMetricName, statistic: string = cloudwatch.Stats.SUM, label?: string) => new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: METRICS_SERVICE, [METRICS_STACK_DIMENSION]: stackName },
      statistic,
      period,
      label,
    });
    this.alarms = {
      executionsFailed: atLeastOnce('ExecutionsFailed', props.stateMachine.metricFailed(sum),
        'a webrun workflow execution failed. `npx webrun-sfn list --status FAILED` lists them; the failure cause keeps the completed results.'),
      executionsTimedOut: atLeastOnce('ExecutionsTimedOut', props.stateMachine.metricTimedOut(sum),
        'a webrun workflow execution reached its timeout. Check that its session was terminated.'),
      cleanupErrors: atLeastOnce('CleanupErrors', cleanupErrors,
        'terminating a webrun session failed: a session may still be open and billed. Check the cleanup function logs.'),
      startFailures: props.deadLetterQueue
        ? atLeastOnce('StartFailures', props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
          'a scheduled or triggered start failed after its retries and is in the dead-letter queue.')
        : undefined,
      cost: props.costAlarmUsd === undefined ? undefined : this.costAlarm(props.costAlarmUsd, custom(WorkflowMetricNames.costUsd), stackName, notify),
    };

    for (const alarm of props.extraAlarms ?? []) alarm.addAlarmAction(notify);
    const allAlarms = [...Object.values(this.alarms).filter((a): a is cloudwatch.Alarm => a !== undefined), ...(props.extraAlarms ?? [])];

    const sm = props.stateMachine;
    const fns = Object.entries(props.functions);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: Token.isUnresolved(stackName) ? undefined : `${stackName}-webrun`,
      defaultInterval: Duration.days(1),
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Executions',
            width: 8,
            left: [sm.metricStarted(sum), sm.metricSucceeded(sum), sm.metricFailed(sum), sm.metricTimedOut(sum), sm.metricAborted(sum)],
          }),
          new cloudwatch.GraphWidget({
            title: 'Execution time',
            width: 8,
            left: [sm.metricTime({ period, statistic: 'p50', label: 'p50' }), sm.metricTime({ period, statistic: 'p90', label: 'p90' })],
          }),
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            width: 8,
            alarms: allAlarms,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Tasks',
            width: 8,
            left: [
              custom(WorkflowMetricNames.tasksCompleted),
              custom(WorkflowMetricNames.tasksFailed),
              custom(WorkflowMetricNames.guardrailsTriggered),
              custom(WorkflowMetricNames.guardrailsAnswered),
            ],
            right: [custom(WorkflowMetricNames.costUsd, cloudwatch.Stats.SUM, 'Cost (USD)')],
          }),
          new cloudwatch.GraphWidget({
            title: 'Task duration (ms)',
            width: 8,
            left: [custom(WorkflowMetricNames.taskDuration, 'p50', 'p50'), custom(WorkflowMetricNames.taskDuration, 'p90', 'p90')],
          }),
          new cloudwatch.GraphWidget({
            title: 'Sessions, polls and doorbells',
            width: 8,
            left: [custom(WorkflowMetricNames.sessionsStarted), custom(WorkflowMetricNames.sessionsTerminated)],
            right: [
              custom(WorkflowMetricNames.pollAttempts),
              custom(WorkflowMetricNames.doorbellsAnswered),
              custom(WorkflowMetricNames.doorbellsIgnored),
              custom(WorkflowMetricNames.webhookFallbacks),
            ],
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Lambda errors and throttles',
            width: 12,
            left: fns.map(([name, fn]) => fn.metricErrors({ ...sum, label: `${name} errors` })),
            right: fns.map(([name, fn]) => fn.metricThrottles({ ...sum, label: `${name} throttles` })),
          }),
          new cloudwatch.GraphWidget({
            title: 'Lambda duration (p90, ms)',
            width: 12,
            left: fns.map(([name, fn]) => fn.metricDuration({ period, statistic: 'p90', label: name })),
          }),
        ],
      ],
    });
  }

  /** The summed CostUsd of a day against the threshold: one evaluation of a one-day period (CloudWatch's longest). */
  private costAlarm(thresholdUsd: number, metric: cloudwatch.Metric, stackName: string, notify: cwActions.SnsAction): cloudwatch.Alarm {
    if (!(Number.isFinite(thresholdUsd) && thresholdUsd > 0)) throw new Error(`WebrunObservability: costAlarmUsd must be a positive number of US dollars, got ${thresholdUsd}`);
    const alarm = new cloudwatch.Alarm(this, 'Cost', {
      metric: metric.with({ period: Duration.days(1), statistic: cloudwatch.Stats.SUM }),
      threshold: thresholdUsd,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `${stackName}: webrun tasks cost more than $${thresholdUsd} in a day (metric CostUsd). Per-run limits: session.maxCostUsd.`,
    });
    alarm.addAlarmAction(notify);
    return alarm;
  }
}
