/**
 * What an operator watches: alarms on failed and timed-out executions, on session cleanup errors, on a day's cost
 * and on dead-letter queues, all to one SNS topic (optionally with an e-mail subscription), and a small CloudWatch
 * dashboard over the Step Functions, Lambda and custom workflow metrics. WebrunWorkflow makes one by default
 * (`workflow.observability`); alarms made later (a trigger's dead-letter queue) join it with `addAlarm` or
 * `alarmOnDeadLetters`.
 */
import { Duration, Stack, Token } from 'aws-cdk-lib/core';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, METRICS_SERVICE, METRICS_STACK_DIMENSION, WorkflowMetricNames, type WorkflowMetricName } from '../lambdas/shared/contract';
import { EMAIL } from './checks';

/**
 * Why CloudWatch would refuse `period` for an alarm, or undefined. What CloudWatch alarms (10, 20, 30 s or a multiple
 * of a minute, one period up to 7 days) and CDK's metrics (1, 5, 10, 30 s or a multiple of a minute) both take:
 * anything else synthesizes and then fails the deploy.
 */
export function alarmPeriodProblem(period: Duration): string | undefined {
  if (period.isUnresolved()) return undefined;
  const seconds = period.toSeconds({ integral: false });
  if ([10, 30].includes(seconds) || (seconds > 0 && seconds % 60 === 0 && seconds <= 7 * 86_400)) return undefined;
  return `must be 10 or 30 seconds, or a whole number of minutes up to 7 days (what CloudWatch alarms take), got ${seconds} seconds`;
}

/** The period every alarm of a workflow evaluates unless `WebrunObservabilityOptions.period` says otherwise. */
export const DEFAULT_ALARM_PERIOD = Duration.minutes(5);

/**
 * An alarm made in `scope` that fires when `metric` reaches 1 in one period (missing data is not breaching), its
 * description prefixed by the stack's name: the shape of every alarm of a workflow but the cost alarm.
 */
export function alarmAtLeastOnce(scope: Construct, id: string, metric: cloudwatch.IMetric, description: string): cloudwatch.Alarm {
  return new cloudwatch.Alarm(scope, id, {
    metric,
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription: `${Stack.of(scope).stackName}: ${description}`,
  });
}

/** An alarm made in `scope` that fires while `queue` holds a message (its most visible messages in a period reach 1). */
export function alarmOnQueuedMessages(scope: Construct, id: string, queue: sqs.IQueue, period: Duration, description: string): cloudwatch.Alarm {
  return alarmAtLeastOnce(scope, id, queue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }), description);
}

/** A custom metric the workflow's Lambdas publish (namespace, service and the stack's name as dimensions). */
export function workflowMetric(scope: Construct, name: WorkflowMetricName, period: Duration, statistic: string = cloudwatch.Stats.SUM, label?: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { service: METRICS_SERVICE, [METRICS_STACK_DIMENSION]: Stack.of(scope).stackName },
    statistic,
    period,
    label,
  });
}

/** The alarms, topic and dashboard a WebrunWorkflow makes: what a user of the construct may choose. */
export interface WebrunObservabilityOptions {
  /**
   * An e-mail address subscribed to the alarm topic (the new one, or `alarmTopic`). AWS mails a confirmation
   * first: alarms reach the address once it is confirmed.
   * @default no subscription (the topic and the alarms exist either way)
   */
  readonly alarmEmail?: string;
  /**
   * An existing SNS topic every alarm notifies, e.g. one shared by an account's alarms and already wired to chat or
   * paging. Its encryption and access policy are its owner's.
   * @default a new topic that accepts TLS only
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * An alarm when the webrun tasks of a day cost more than this many US dollars in all (the CostUsd metric, summed
   * over one day). Per-run limits are the execution input's `session.maxCostUsd`.
   * @default no cost alarm
   */
  readonly costAlarmUsd?: number;
  /**
   * Whether to make a CloudWatch dashboard. An account's first 3 dashboards are free, each further one costs $3 a
   * month: turn it off when you chart these metrics elsewhere.
   * @default true
   */
  readonly dashboard?: boolean;
  /**
   * The dashboard's name (letters, digits, `-` and `_`). Dashboard names are unique per account, hence no fixed name
   * by default: two workflows in one account (or one stack) never collide.
   * @default a name CloudFormation generates
   */
  readonly dashboardName?: string;
  /**
   * The period every alarm but the cost alarm evaluates (one period at or above the threshold of 1 fires it): the
   * execution, cleanup, dead-letter and doorbell alarms.
   * @default Duration.minutes(5)
   */
  readonly period?: Duration;
}

export interface WebrunObservabilityProps extends WebrunObservabilityOptions {
  /** The workflow's state machine: its failed and timed-out executions raise alarms. */
  readonly stateMachine: sfn.IStateMachine;
  /** Every Lambda of the workflow by name, for the dashboard's error, throttle and duration graphs. */
  readonly functions: { readonly [name: string]: lambda.IFunction };
  /**
   * The functions whose errors mean a session may still be open and billed (the terminate step, and the cleanup
   * that ends the sessions of timed-out or stopped executions). At least one.
   */
  readonly cleanupFunctions: lambda.IFunction[];
}

/**
 * Alarms to one SNS topic and a dashboard, for one webrun workflow. Every alarm made here, or added with
 * `addAlarm` / `alarmOnDeadLetters`, notifies `alarmTopic` and shows on the dashboard's alarm widget.
 */
export class WebrunObservability extends Construct {
  /** Every alarm notifies this topic: subscribe a chat or paging integration to it. */
  public readonly alarmTopic: sns.ITopic;
  /** At least one execution failed in a period. */
  public readonly executionsFailedAlarm: cloudwatch.Alarm;
  /** At least one execution reached its timeout in a period. */
  public readonly executionsTimedOutAlarm: cloudwatch.Alarm;
  /** The terminate step or the session cleanup failed: a session may still be open and billed. */
  public readonly cleanupErrorsAlarm: cloudwatch.Alarm;
  /** The tasks of a day cost more than `costAlarmUsd`; undefined without it. */
  public readonly costAlarm?: cloudwatch.Alarm;
  /** Undefined when `dashboard` is false. */
  public readonly dashboard?: cloudwatch.Dashboard;

  private readonly notify: cwActions.SnsAction;
  private readonly alarmList: cloudwatch.AlarmBase[] = [];
  /** The period its alarms evaluate. */
  public readonly period: Duration;

  constructor(scope: Construct, id: string, props: WebrunObservabilityProps) {
    super(scope, id);
    if (props.cleanupFunctions.length === 0) throw new Error('WebrunObservability: cleanupFunctions must name at least one function');
    this.period = props.period ?? DEFAULT_ALARM_PERIOD;
    const period = this.period;
    const problem = alarmPeriodProblem(period);
    if (problem) throw new Error(`WebrunObservability: period ${problem}`);
    if (props.alarmEmail !== undefined && !Token.isUnresolved(props.alarmEmail) && !EMAIL.test(props.alarmEmail)) {
      throw new Error(`WebrunObservability: alarmEmail is not an e-mail address: ${JSON.stringify(props.alarmEmail)}`);
    }
    const stackName = Stack.of(this).stackName;

    this.alarmTopic = props.alarmTopic ?? new sns.Topic(this, 'AlarmTopic', { displayName: 'webrun-sfn alarms', enforceSSL: true });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    this.notify = new cwActions.SnsAction(this.alarmTopic);

    const atLeastOnce = (alarmId: string, metric: cloudwatch.IMetric, description: string) => {
      const alarm = alarmAtLeastOnce(this, alarmId, metric, description);
      this.addAlarm(alarm);
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
    const custom = (name: WorkflowMetricName, statistic?: string, label?: string) => workflowMetric(this, name, period, statistic, label);
    this.executionsFailedAlarm = atLeastOnce('ExecutionsFailed', props.stateMachine.metricFailed(sum),
      'a webrun workflow execution failed. `npx webrun-sfn list --status FAILED` lists them; the failure cause keeps the completed results.');
    this.executionsTimedOutAlarm = atLeastOnce('ExecutionsTimedOut', props.stateMachine.metricTimedOut(sum),
      'a webrun workflow execution reached its timeout. Check that its session was terminated.');
    this.cleanupErrorsAlarm = atLeastOnce('CleanupErrors', cleanupErrors,
      'terminating a webrun session failed: a session may still be open and billed. Check the cleanup function logs.');
    if (props.costAlarmUsd !== undefined) {
      this.costAlarm = this.makeCostAlarm(props.costAlarmUsd, custom(WorkflowMetricNames.costUsd), stackName);
      this.addAlarm(this.costAlarm);
    }

    if (props.dashboard ?? true) this.dashboard = this.makeDashboard(props, custom, sum);
  }

  /**
   * Every alarm made here or added since, in the order they were added (the dashboard's alarm widget shows them
   * all, however late they were added).
   */
  public get alarms(): cloudwatch.AlarmBase[] {
    return [...this.alarmList];
  }

  /** Makes `alarm` (an Alarm or a CompositeAlarm) notify the alarm topic, and shows it on the dashboard. */
  public addAlarm(alarm: cloudwatch.AlarmBase): void {
    alarm.addAlarmAction(this.notify);
    this.alarmList.push(alarm);
  }

  /**
   * An alarm, made in this construct as `id`, that fires while `queue` holds a message (its maximum of visible
   * messages over the alarm period reaches 1), notifying the topic: for the dead-letter queue of whatever starts or
   * cleans up the workflow's executions.
   */
  public alarmOnDeadLetters(id: string, queue: sqs.IQueue, description: string): cloudwatch.Alarm {
    const alarm = alarmOnQueuedMessages(this, id, queue, this.period, description);
    this.addAlarm(alarm);
    return alarm;
  }

  /** The summed CostUsd of a day against the threshold: one evaluation of a one-day period (CloudWatch's longest). */
  private makeCostAlarm(thresholdUsd: number, metric: cloudwatch.Metric, stackName: string): cloudwatch.Alarm {
    if (!(Number.isFinite(thresholdUsd) && thresholdUsd > 0)) throw new Error(`WebrunObservability: costAlarmUsd must be a positive number of US dollars, got ${thresholdUsd}`);
    return new cloudwatch.Alarm(this, 'Cost', {
      metric: metric.with({ period: Duration.days(1), statistic: cloudwatch.Stats.SUM }),
      threshold: thresholdUsd,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `${stackName}: webrun tasks cost more than $${thresholdUsd} in a day (metric CostUsd). Per-run limits: session.maxCostUsd.`,
    });
  }

  private makeDashboard(
    props: WebrunObservabilityProps,
    custom: (name: WorkflowMetricName, statistic?: string, label?: string) => cloudwatch.Metric,
    sum: cloudwatch.MetricOptions,
  ): cloudwatch.Dashboard {
    const period = this.period;
    const sm = props.stateMachine;
    const fns = Object.entries(props.functions);
    return new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
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
          new AlarmListWidget('Alarms', 8, this.alarmList),
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
}

/**
 * An alarm status widget over a list that may still grow after the dashboard is made (`addAlarm` is called after
 * construction): it renders an AlarmStatusWidget of the list as it is when the template is synthesized.
 */
class AlarmListWidget extends cloudwatch.ConcreteWidget {
  constructor(private readonly title: string, width: number, private readonly list: readonly cloudwatch.IAlarm[]) {
    super(width, 3);
  }

  toJson(): any[] {
    const widget = new cloudwatch.AlarmStatusWidget({ title: this.title, width: this.width, height: this.height, alarms: [...this.list] });
    widget.position(this.x ?? 0, this.y ?? 0);
    return widget.toJson();
  }
}
