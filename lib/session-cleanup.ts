import { Duration, type RemovalPolicy } from 'aws-cdk-lib/core';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { CLEANUP_STATUSES, EXECUTION_STATUS_CHANGE } from '../lambdas/shared/contract';
import { alarmOnQueuedMessages, DEFAULT_ALARM_PERIOD } from './observability';
import { WebrunFunction } from './webrun-function';

export interface SessionCleanupProps {
  /** The workflow whose executions are cleaned up. */
  readonly stateMachine: sfn.IStateMachine;
  /** The secret holding the webrun API key (the cleanup Lambda gets its ARN through `environment`). */
  readonly apiKeySecret: secretsmanager.ISecret;
  /** The session records the workflow writes: the cleanup reads them, and marks an execution without one stopped. */
  readonly sessionTable: dynamodb.ITable;
  /** The Lambda environment the workflow functions share (secret ARN, base URL). */
  readonly environment: Record<string, string>;
  /**
   * Retention of the cleanup Lambda's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What a stack deletion does with the cleanup Lambda's log group.
   * @default RemovalPolicy.DESTROY
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Whether to alarm while the dead-letter queue holds events (`deadLetterAlarm`). WebrunWorkflow sets it to false
   * when its `observability` is false, and otherwise adds the alarm to its topic and dashboard.
   * @default true
   */
  readonly deadLetterAlarm?: boolean;
  /**
   * The period `deadLetterAlarm` evaluates (WebrunWorkflow passes its observability's `period`).
   * @default Duration.minutes(5)
   */
  readonly deadLetterAlarmPeriod?: Duration;
}

/**
 * Terminates the webrun session of every execution that ends ABORTED, TIMED_OUT or FAILED without having run a
 * terminate state: an execution timeout and StopExecution skip every Catch, and States.Runtime or
 * States.DataLimitExceeded cannot be caught. An EventBridge rule on the execution status change invokes a Lambda
 * that reads the execution's session record (lambdas/shared/cleanup.ts). Events it cannot handle after its retries land in
 * an encrypted dead-letter queue with an alarm: each one names an execution whose session may still be open.
 */
export class SessionCleanup extends Construct {
  /** The cleanup Lambda (a WebrunFunction: Node.js 22 on arm64, the one bundle, its own role and log group). */
  public readonly function: lambda.Function;
  public readonly rule: events.Rule;
  public readonly deadLetterQueue: sqs.Queue;
  /**
   * In alarm while the dead-letter queue holds events: a session may still be open and billed. Undefined when
   * `deadLetterAlarm` is false.
   */
  public readonly deadLetterAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: SessionCleanupProps) {
    super(scope, id);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    this.function = new WebrunFunction(this, 'CleanupSession', {
      handler: 'cleanupSession',
      description: 'webrun-sfn: terminate the session of a stopped, timed-out or failed execution',
      // A record read, at most one conditional write, and one terminate call of at most 15 s.
      timeout: Duration.minutes(1),
      environment: props.environment,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      // A webrun outage is retried twice (after ~1 and ~2 minutes), then the event waits in the queue.
      async: { retryAttempts: 2, maxEventAge: Duration.hours(6), deadLetterQueue: this.deadLetterQueue },
    });
    props.apiKeySecret.grantRead(this.function);
    props.sessionTable.grant(this.function, 'dynamodb:GetItem', 'dynamodb:UpdateItem');

    this.rule = new events.Rule(this, 'ExecutionEnded', {
      description: 'webrun-sfn: an execution ended without terminating its webrun session (aborted, timed out or failed)',
      eventPattern: {
        source: ['aws.states'],
        detailType: [EXECUTION_STATUS_CHANGE],
        detail: { stateMachineArn: [props.stateMachine.stateMachineArn], status: [...CLEANUP_STATUSES] },
      },
      targets: [
        // Delivery to Lambda's async queue rarely fails; when it does, retry for 2 hours, then dead-letter.
        new targets.LambdaFunction(this.function, { retryAttempts: 8, maxEventAge: Duration.hours(2), deadLetterQueue: this.deadLetterQueue }),
      ],
    });

    if (props.deadLetterAlarm === false) return;
    this.deadLetterAlarm = alarmOnQueuedMessages(this, 'DeadLettersAlarm', this.deadLetterQueue, props.deadLetterAlarmPeriod ?? DEFAULT_ALARM_PERIOD,
      `session cleanup gave up on an execution; its webrun session may still be open. Read the messages in ${this.deadLetterQueue.queueName}.`);
  }
}
