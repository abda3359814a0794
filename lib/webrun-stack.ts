import { CfnOutput, Duration, Stack, Token, type StackProps } from 'aws-cdk-lib/core';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { EMAIL } from './checks';
import { lambdaLogLevelOf, secretNameSuffixProblem, type ScheduleConfig, type TriggerConfig, type WebrunConfig } from './config';
import type { WebrunObservability } from './observability';
import { WebrunTriggers } from './triggers';
import { WebrunBatch, type WebrunBatchOptions } from './webrun-batch';
import { Completion, WebrunWorkflow, type WebrunWorkflowProps } from './webrun-workflow';

export interface WebrunStackProps extends StackProps {
  readonly workflow?: WebrunWorkflowProps;
  /**
   * Name of an existing Secrets Manager secret with the webrun API key (ignored when `workflow.apiKeySecret` is set).
   * It must not end in a hyphen and six characters ("prod-webrun"), which Secrets Manager reads as an ARN's suffix.
   * @default the workflow creates a secret
   */
  readonly apiKeySecretName?: string;
  /** EventBridge Scheduler schedules that start the workflow (validated by lib/config.ts). @default none */
  readonly schedules?: readonly ScheduleConfig[];
  /** EventBridge rules on the default bus that start the workflow (validated by lib/config.ts). @default none */
  readonly triggers?: readonly TriggerConfig[];
  /**
   * E-mail subscribed to the alarm topic (ignored when `workflow.observability` is false or sets its own `alarmEmail`).
   * @default no subscription (the topic is still created)
   */
  readonly alarmEmail?: string;
  /**
   * E-mail told of guardrail questions that wait for a person: the stack creates the question topic with this
   * subscription (ignored when `workflow.questionTopic` is set). @default the EventBridge event only
   */
  readonly questionEmail?: string;
  /**
   * An alarm when the tasks of the last 24 hours cost more than this (US dollars); ignored when
   * `workflow.observability` is false or sets its own `costAlarmUsd`.
   * @default no cost alarm
   */
  readonly costAlarmUsd?: number;
  /**
   * The batch state machine (a Distributed Map of workflow runs over items in S3), with these settings; it runs the
   * stack's workflow and uses its result bucket. @default no batch state machine
   */
  readonly batch?: WebrunBatchOptions;
}

/** The stack's props from a validated `webrun.config.json` (bin/app.ts adds the environment). */
export function stackPropsFromConfig(config: WebrunConfig): WebrunStackProps {
  return {
    workflow: {
      baseUrl: config.baseUrl,
      logLevel: config.logLevel as sfn.LogLevel,
      includeExecutionData: config.includeExecutionData,
      lambdaLogLevel: lambdaLogLevelOf(config.lambdaLogLevel),
      logRetention: config.logRetentionDays as logs.RetentionDays,
      completion: config.completion === 'webhook' ? Completion.WEBHOOK : Completion.POLL,
      inlineResultBytes: config.inlineResultBytes,
      resultRetentionDays: config.resultRetentionDays,
    },
    apiKeySecretName: config.apiKeySecretName,
    schedules: config.schedules,
    triggers: config.triggers,
    alarmEmail: config.alarmEmail,
    questionEmail: config.questionEmail,
    costAlarmUsd: config.costAlarmUsd,
    batch: config.batch.enabled
      ? {
        maxConcurrency: config.batch.maxConcurrency,
        toleratedFailurePercentage: config.batch.toleratedFailurePercentage,
        logRetention: config.logRetentionDays as logs.RetentionDays,
        logLevel: config.logLevel as sfn.LogLevel,
        includeExecutionData: config.includeExecutionData,
      }
      : undefined,
  };
}

/**
 * The deployable unit: composes the workflow construct (with its alarms, topic and dashboard), the schedules and
 * triggers, and publishes what operators need.
 */
export class WebrunStack extends Stack {
  public readonly workflow: WebrunWorkflow;
  /** Schedules and event rules; undefined when the config has none. */
  public readonly triggers?: WebrunTriggers;
  /** The workflow's alarms, topic and dashboard (`workflow.observability`); undefined when `workflow.observability` is false. */
  public readonly observability?: WebrunObservability;
  /** The batch state machine; undefined unless `batch` is given (config `batch.enabled`). */
  public readonly batch?: WebrunBatch;

  constructor(scope: Construct, id: string, props: WebrunStackProps = {}) {
    super(scope, id, props);
    // Checked as webrun.config.json's is: such a name deploys, and then no run can read the key.
    const secretNameProblem = props.apiKeySecretName !== undefined && !props.workflow?.apiKeySecret && !Token.isUnresolved(props.apiKeySecretName)
      ? secretNameSuffixProblem(props.apiKeySecretName) : undefined;
    if (secretNameProblem) throw new Error(`WebrunStack: apiKeySecretName ${secretNameProblem}`);
    const apiKeySecret = props.workflow?.apiKeySecret
      ?? (props.apiKeySecretName ? secretsmanager.Secret.fromSecretNameV2(this, 'ApiKeySecret', props.apiKeySecretName) : undefined);
    let questionTopic = props.workflow?.questionTopic;
    if (props.questionEmail !== undefined && !Token.isUnresolved(props.questionEmail) && !EMAIL.test(props.questionEmail)) {
      throw new Error(`WebrunStack: questionEmail is not an e-mail address: ${JSON.stringify(props.questionEmail)}`);
    }
    if (!questionTopic && props.questionEmail) {
      const topic = new sns.Topic(this, 'QuestionTopic', { displayName: 'webrun-sfn guardrail questions', enforceSSL: true });
      topic.addSubscription(new subscriptions.EmailSubscription(props.questionEmail));
      questionTopic = topic;
    }
    const given = props.workflow?.observability;
    const observability = given === false ? false : {
      ...(typeof given === 'object' ? given : {}),
      alarmEmail: (typeof given === 'object' ? given.alarmEmail : undefined) ?? props.alarmEmail,
      costAlarmUsd: (typeof given === 'object' ? given.costAlarmUsd : undefined) ?? props.costAlarmUsd,
      // One workflow per stack: its dashboard can carry the stack's name, and its region: dashboards are global to the
      // account, so the same stack in two regions would otherwise share (and overwrite, and delete) one.
      dashboardName: (typeof given === 'object' ? given.dashboardName : undefined) ?? (Token.isUnresolved(this.stackName) ? undefined : `${this.stackName}-${this.region}-webrun`),
    };
    this.workflow = new WebrunWorkflow(this, 'Workflow', { ...props.workflow, apiKeySecret, questionTopic, observability });
    this.observability = this.workflow.observability;
    if (questionTopic) new CfnOutput(this, 'QuestionTopicArn', { value: questionTopic.topicArn, description: 'Guardrail questions waiting for a person are published here' });
    if ((props.schedules?.length ?? 0) + (props.triggers?.length ?? 0) > 0) {
      this.triggers = new WebrunTriggers(this, 'Triggers', { stateMachine: this.workflow.stateMachine, schedules: props.schedules, triggers: props.triggers });
      new CfnOutput(this, 'StartFailuresQueueUrl', { value: this.triggers.deadLetterQueue.queueUrl, description: 'Scheduled or triggered starts that failed after their retries' });
      // The triggers come after the workflow: their dead-letter queue joins the workflow's alarms.
      this.observability?.alarmOnDeadLetters('StartFailures', this.triggers.deadLetterQueue,
        'a scheduled or triggered start failed after its retries and is in the dead-letter queue.');
    }
    if (props.batch) {
      this.batch = new WebrunBatch(this, 'Batch', { ...props.batch, logRemovalPolicy: props.batch.logRemovalPolicy ?? props.workflow?.logRemovalPolicy, workflow: this.workflow });
      this.observability?.addAlarm(this.batch.failedAlarm);
      this.addBatchDashboardRow(this.batch);
    }
    if (this.observability) new CfnOutput(this, 'AlarmTopicArn', { value: this.observability.alarmTopic.topicArn, description: 'Every alarm notifies this SNS topic' });
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn, description: 'Start executions of this state machine' });
    new CfnOutput(this, 'ApiKeySecretArn', { value: this.workflow.apiKeySecret.secretArn, description: 'Put the webrun API key into this secret' });
    new CfnOutput(this, 'ResultBucketName', { value: this.workflow.resultBucket.bucketName, description: 'Task results too large for the execution state (resultRef.uri)' });
    if (this.workflow.doorbell) {
      new CfnOutput(this, 'DoorbellReceiverUrl', { value: this.workflow.doorbell.url.url, description: 'The public doorbell receiver the webrun API rings when a task ends (completion by webhook)' });
    }
    if (this.batch) {
      new CfnOutput(this, 'BatchStateMachineArn', { value: this.batch.stateMachine.stateMachineArn, description: 'Start batches of this state machine (npx webrun-sfn batch start)' });
    }
    if (this.workflow.cleanup) {
      new CfnOutput(this, 'SessionCleanupDeadLetterQueueUrl', {
        value: this.workflow.cleanup.deadLetterQueue.queueUrl,
        description: 'Executions whose webrun session cleanup gave up (the session may still be open)',
      });
    }
  }

  /** A dashboard row for batches: their executions, how long they take, and their alarm. */
  private addBatchDashboardRow(batch: WebrunBatch): void {
    const sm = batch.stateMachine;
    const period = this.observability?.period ?? Duration.minutes(5);
    const sum = { period, statistic: cloudwatch.Stats.SUM };
    this.observability?.dashboard?.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Batches',
        width: 8,
        left: [sm.metricStarted(sum), sm.metricSucceeded(sum), sm.metricFailed(sum), sm.metricAborted(sum), sm.metricTimedOut(sum)],
      }),
      new cloudwatch.GraphWidget({
        title: 'Batch time',
        width: 8,
        left: [sm.metricTime({ period, statistic: 'p50', label: 'p50' }), sm.metricTime({ period, statistic: 'max', label: 'max' })],
      }),
      new cloudwatch.AlarmWidget({ title: 'Batches failed or timed out', width: 8, alarm: batch.failedAlarm }),
    );
  }
}
