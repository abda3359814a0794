/**
 * Operating the deployed workflow, from a sample config (examples/config/full.json plus a disabled schedule):
 * schedules and triggers that start it with a retry policy and a dead-letter queue, logs and tracing, alarms to
 * an SNS topic, the dashboard, the existing secret. One synthesis for the file (cdk-nag checks this stack in
 * checked-synth.test.ts).
 */
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib/core';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV, METRICS_NAMESPACE, WorkflowMetricNames } from '../../lambdas/shared/contract';
import { loadConfig, type WebrunConfig } from '../../lib/config';
import { WebrunTriggers, type WebrunTriggersProps } from '../../lib/triggers';
import { stackPropsFromConfig, WebrunStack } from '../../lib/webrun-stack';

const root = path.join(__dirname, '..', '..');
const ENVIRONMENT = { account: '123456789012', region: 'eu-west-1' };
type Resource = { Type: string; Properties: Record<string, any> };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Principal?: unknown; Condition?: unknown };

let stack: WebrunStack;
let template: Template;
let config: WebrunConfig;

const ref = (construct: { node: { defaultChild?: unknown } }) => ({ Ref: stack.getLogicalId(construct.node.defaultChild as never) });
const arnOf = (construct: { node: { defaultChild?: unknown } }) => ({ 'Fn::GetAtt': [stack.getLogicalId(construct.node.defaultChild as never), 'Arn'] });
const resources = (type: string) => Object.values(template.findResources(type) as Record<string, Resource>);
const statements = () => resources('AWS::IAM::Policy').flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

beforeAll(() => {
  const full = loadConfig({ path: 'examples/config/full.json', cwd: root });
  const disabled = loadConfig({ defaultDir: root }).schedules[0];
  config = { ...full, schedules: [...full.schedules, disabled] };
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  stack = new WebrunStack(app, config.stackName, { ...stackPropsFromConfig(config), env: ENVIRONMENT });
  template = Template.fromStack(stack);
});

describe('schedules', () => {
  it('each config schedule is an EventBridge Scheduler schedule that starts the state machine with its validated input', () => {
    const sm = ref(stack.workflow.stateMachine);
    const hourly = config.schedules.find((s) => s.name === 'hourly-price-check')!;
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Target: Match.objectLike({ Arn: sm, Input: JSON.stringify(hourly.input) }),
    });
    const monday = config.schedules.find((s) => s.name === 'monday-report')!;
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 7 ? * MON *)',
      ScheduleExpressionTimezone: 'America/New_York',
      Target: Match.objectLike({ Arn: sm, Input: JSON.stringify(monday.input) }),
    });
    expect(resources('AWS::Scheduler::Schedule')).toHaveLength(3);
  });

  it('a schedule with enabled: false is deployed disabled', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'cron(0 9 ? * MON-FRI *)', ScheduleExpressionTimezone: 'Europe/Paris', State: 'DISABLED' });
  });

  it('every schedule retries a failed start, then sends it to the dead-letter queue', () => {
    const dlq = arnOf(stack.triggers!.deadLetterQueue);
    for (const schedule of resources('AWS::Scheduler::Schedule')) {
      expect(schedule.Properties.Target.RetryPolicy).toEqual({ MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 });
      expect(schedule.Properties.Target.DeadLetterConfig).toEqual({ Arn: dlq });
    }
  });

  it("the schedules' role may start this state machine and write to the dead-letter queue, nothing more", () => {
    const roleArn = resources('AWS::Scheduler::Schedule')[0].Properties.Target.RoleArn as { 'Fn::GetAtt': [string, string] };
    const roleId = roleArn['Fn::GetAtt'][0];
    const role = template.toJSON().Resources[roleId] as Resource;
    expect(JSON.stringify(role.Properties.AssumeRolePolicyDocument)).toContain('scheduler.amazonaws.com');
    const policies = resources('AWS::IAM::Policy').filter((p) => JSON.stringify(p.Properties.Roles).includes(roleId));
    const granted = policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]).map((s) => [actionsOf(s).join(','), s.Resource]);
    expect(granted).toEqual(expect.arrayContaining([
      ['states:StartExecution', ref(stack.workflow.stateMachine)],
      ['sqs:SendMessage', arnOf(stack.triggers!.deadLetterQueue)],
    ]));
    for (const [actions] of granted) expect(['states:StartExecution', 'sqs:SendMessage']).toContain(actions);
  });
});

describe('event triggers', () => {
  it('an event pattern becomes a rule on the default bus, with event fields filled into the input', () => {
    const [upload] = resources('AWS::Events::Rule').filter((r) => JSON.stringify(r.Properties.EventPattern).includes('aws.s3'));
    expect(upload.Properties.EventBusName).toBeUndefined();
    expect(upload.Properties.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: { bucket: { name: ['my-upload-bucket'] }, object: { key: [{ prefix: 'incoming/' }] } },
    });
    const [target] = upload.Properties.Targets;
    expect(target.Arn).toEqual(ref(stack.workflow.stateMachine));
    expect(target.InputTransformer.InputPathsMap).toEqual({ 'detail-object-key': '$.detail.object.key', 'detail-bucket-name': '$.detail.bucket.name' });
    expect(JSON.parse(target.InputTransformer.InputTemplate.replace(/<([a-z-]+)>/g, 'X'))).toEqual({
      tasks: [{ taskDetails: 'Fill the order form with the data of the file X from bucket X' }],
    });
  });

  it('without an input, the event detail is the execution input', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['com.example.orders'], 'detail-type': ['webrun workflow requested'] },
      Targets: [Match.objectLike({ Arn: ref(stack.workflow.stateMachine), InputPath: '$.detail' })],
    });
  });

  it('every trigger retries, then dead-letters to the same queue as the schedules', () => {
    const dlq = arnOf(stack.triggers!.deadLetterQueue);
    const triggerRules = resources('AWS::Events::Rule').filter((r) => String(r.Properties.Description).startsWith('webrun-sfn trigger'));
    expect(triggerRules).toHaveLength(2);
    for (const rule of triggerRules) {
      expect(rule.Properties.Targets[0]).toMatchObject({ RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 }, DeadLetterConfig: { Arn: dlq } });
    }
  });

  it('the dead-letter queue is encrypted, TLS-only, keeps messages 14 days and lets EventBridge write to it', () => {
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
    const queuePolicy = resources('AWS::SQS::QueuePolicy').find((p) => JSON.stringify(p.Properties.Queues).includes(stack.getLogicalId(stack.triggers!.deadLetterQueue.node.defaultChild as never)))!;
    const policy = queuePolicy.Properties.PolicyDocument.Statement as Statement[];
    expect(policy).toEqual(expect.arrayContaining([
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      expect.objectContaining({ Effect: 'Allow', Action: 'sqs:SendMessage', Principal: { Service: 'events.amazonaws.com' } }),
    ]));
  });
});

describe('the triggers construct refuses a retry policy EventBridge would not take, naming the prop', () => {
  const triggers = (props: Partial<WebrunTriggersProps>) => () => {
    const stack = new Stack(new App(), 'Triggers');
    const stateMachine = sfn.StateMachine.fromStateMachineArn(stack, 'Machine', 'arn:aws:states:eu-west-1:123456789012:stateMachine:webrun');
    return new WebrunTriggers(stack, 'Triggers', { stateMachine, ...props });
  };

  it.each([-1, 186, 1.5])('retryAttempts %d', (retryAttempts) => {
    expect(triggers({ retryAttempts })).toThrow(`WebrunTriggers: retryAttempts must be an integer from 0 to 185, got ${retryAttempts}`);
  });

  it.each([
    [Duration.seconds(59), 59],
    [Duration.hours(25), 90_000],
    [Duration.millis(90_500), 90.5],
  ])('maxEventAge %s', (maxEventAge, seconds) => {
    expect(triggers({ maxEventAge })).toThrow(`WebrunTriggers: maxEventAge must be a whole number of seconds from 60 to 86400 (1 minute to 24 hours), got ${seconds}`);
  });

  it('takes the bounds themselves', () => {
    expect(triggers({ retryAttempts: 0, maxEventAge: Duration.minutes(1) })).not.toThrow();
    expect(triggers({ retryAttempts: 185, maxEventAge: Duration.hours(24) })).not.toThrow();
  });

  // Another app gives schedules and triggers in code: they are checked as the config file's are.
  it.each([
    [{ schedules: [{ name: 'x', expression: 'rate(0 minutes)', input: { tasks: [{ taskDetails: 'a' }] }, enabled: true }] }, 'WebrunTriggers: schedules[0].expression: a rate must be at least 1'],
    [{ schedules: [{ name: 'x', expression: 'rate(5 minutes)', input: { tasks: [] }, enabled: true }] }, 'WebrunTriggers: schedules[0].input.tasks: must contain at least one task'],
    [{ triggers: [{ name: 't', eventPattern: { source: [{ prefx: 'com.' }] }, inputPath: '$.detail' }] }, 'WebrunTriggers: triggers[0].eventPattern.source[0]: "prefx" is not an EventBridge content filter'],
  ])('refuses schedules and triggers given in code that the deploy or every run would refuse: %#', (props, message) => {
    expect(triggers(props as unknown as Partial<WebrunTriggersProps>)).toThrow(message);
  });

  it('takes the schedules and triggers a config file gave (validated already) as they are', () => {
    const config = loadConfig({ path: path.join(__dirname, '..', '..', 'examples', 'config', 'full.json') });
    expect(triggers({ schedules: config.schedules, triggers: config.triggers })).not.toThrow();
  });
});

describe('e-mail props given in code are checked as the config file checks them', () => {
  it('the stack\'s questionEmail and the observability\'s alarmEmail', () => {
    // No bundling: the functions are made (and would be bundled, with esbuild) before the observability checks its prop.
    const noBundling = () => new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    expect(() => new WebrunStack(noBundling(), 'Q', { questionEmail: 'nope' })).toThrow('WebrunStack: questionEmail is not an e-mail address: "nope"');
    expect(() => new WebrunStack(noBundling(), 'A', { workflow: { observability: { alarmEmail: 'not an email' } } })).toThrow('WebrunObservability: alarmEmail is not an e-mail address: "not an email"');
  });
});

describe('logging and tracing', () => {
  it('the state machine logs at the configured level, without execution data, and is traced', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: false }),
      TracingConfiguration: { Enabled: true },
    });
  });

  it('every log group keeps the configured retention', () => {
    const groups = resources('AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(5);
    for (const group of groups) expect(group.Properties.RetentionInDays).toBe(90);
  });

  it('the Lambdas are traced, log JSON at the configured level and name their stack for the metrics', () => {
    const functions = resources('AWS::Lambda::Function').filter((f) => f.Properties.Environment?.Variables?.[ENV.secretArn]);
    expect(functions.length).toBeGreaterThanOrEqual(4);
    for (const fn of functions) {
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON' });
      expect(fn.Properties.Environment.Variables).toMatchObject({ POWERTOOLS_LOG_LEVEL: 'INFO', [ENV.stackName]: 'WebrunSfnProd' });
    }
  });
});

describe('alarms and dashboard', () => {
  const topic = () => ref(stack.observability!.alarmTopic);

  it('failed and timed-out executions raise alarms to the SNS topic', () => {
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/States',
        MetricName: metric,
        Dimensions: [{ Name: 'StateMachineArn', Value: ref(stack.workflow.stateMachine) }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [topic()],
      });
    }
  });

  it('errors of the terminate step and of the session cleanup raise the cleanup alarm', () => {
    const alarm = resources('AWS::CloudWatch::Alarm').find((a) => a.Properties.Metrics?.some((m: { Label?: string }) => m.Label === 'Cleanup errors'))!;
    expect(alarm.Properties.AlarmActions).toEqual([topic()]);
    const watched = (alarm.Properties.Metrics as Array<{ MetricStat?: { Metric: { MetricName: string; Dimensions: Array<{ Value: unknown }> } } }>)
      .filter((m) => m.MetricStat)
      .map((m) => [m.MetricStat!.Metric.MetricName, m.MetricStat!.Metric.Dimensions[0].Value]);
    expect(watched).toEqual([['Errors', ref(stack.workflow.functions.terminateSession)], ['Errors', ref(stack.workflow.cleanup!.function)]]);
  });

  it('a start in the dead-letter queue raises an alarm, and so does the cleanup dead-letter queue', () => {
    const queueAlarms = resources('AWS::CloudWatch::Alarm').filter((a) => a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible');
    expect(queueAlarms.map((a) => a.Properties.Dimensions[0].Value)).toEqual(expect.arrayContaining([
      { 'Fn::GetAtt': [stack.getLogicalId(stack.triggers!.deadLetterQueue.node.defaultChild as never), 'QueueName'] },
      { 'Fn::GetAtt': [stack.getLogicalId(stack.workflow.cleanup!.deadLetterQueue.node.defaultChild as never), 'QueueName'] },
    ]));
    for (const alarm of queueAlarms) expect(alarm.Properties.AlarmActions).toEqual([topic()]);
  });

  it('every alarm notifies the topic, which mails the configured address and takes TLS only', () => {
    for (const alarm of resources('AWS::CloudWatch::Alarm')) expect(alarm.Properties.AlarmActions).toEqual([topic()]);
    expect(resources('AWS::CloudWatch::Alarm')).toHaveLength(7);
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: topic() });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('costAlarmUsd raises an alarm when the tasks of a day cost more (CostUsd summed over one day)', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: WorkflowMetricNames.costUsd,
      Statistic: 'Sum',
      Period: 86_400,
      EvaluationPeriods: 1,
      Threshold: 25,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic()],
    });
  });

  it('the dashboard graphs executions, the custom task metrics and the alarms', () => {
    const [dashboard] = resources('AWS::CloudWatch::Dashboard');
    // Dashboards are global to the account: the region keeps the same stack in two regions from sharing one.
    expect(dashboard.Properties.DashboardName).toBe('WebrunSfnProd-eu-west-1-webrun');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const name of ['ExecutionsStarted', 'ExecutionsFailed', METRICS_NAMESPACE, ...Object.values(WorkflowMetricNames), 'Errors', 'Throttles']) expect(body).toContain(name);
    expect(body).toContain('alarm');
  });
});

describe('the stack\'s alarms come from the workflow construct', () => {
  it('are the workflow\'s observability, the start failures alarm added to it after the triggers', () => {
    expect(stack.observability).toBe(stack.workflow.observability);
    expect(stack.observability!.alarms.map((a) => a.node.id)).toContain('StartFailures');
    expect(stack.observability!.node.scope).toBe(stack.workflow);
  });

  it('with workflow.observability false: no alarm, topic, dashboard or AlarmTopicArn output; the triggers and their queue stay', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    // Without the batch, whose own alarm is WebrunBatch's (it would notify the topic, were there one).
    const quiet = new WebrunStack(app, 'Quiet', { ...stackPropsFromConfig(config), batch: undefined, workflow: { ...stackPropsFromConfig(config).workflow, observability: false }, env: ENVIRONMENT });
    const t = Template.fromStack(quiet);
    for (const type of ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Dashboard']) t.resourceCountIs(type, 0);
    // The question topic and its e-mail only: guardrail questions are not alarms.
    t.resourceCountIs('AWS::SNS::Topic', 1);
    t.resourceCountIs('AWS::SNS::Subscription', 1);
    t.hasResourceProperties('AWS::SNS::Subscription', { Endpoint: 'buyer@example.com' });
    expect(Object.keys(t.toJSON().Outputs)).toEqual(expect.arrayContaining(['StateMachineArn', 'StartFailuresQueueUrl']));
    expect(Object.keys(t.toJSON().Outputs)).not.toContain('AlarmTopicArn');
  });

  it('workflow.observability options win over the stack\'s alarmEmail and costAlarmUsd', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const own = new WebrunStack(app, 'Own', { alarmEmail: 'ops@example.com', costAlarmUsd: 25, workflow: { observability: { alarmEmail: 'me@example.com', dashboard: false } }, env: ENVIRONMENT });
    const t = Template.fromStack(own);
    t.hasResourceProperties('AWS::SNS::Subscription', { Endpoint: 'me@example.com' });
    t.resourceCountIs('AWS::SNS::Subscription', 1);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: WorkflowMetricNames.costUsd, Threshold: 25 });
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });
});

describe('batches', () => {
  it('batch.enabled deploys the batch state machine with the configured concurrency and tolerance, its alarm on the topic', () => {
    expect(stack.batch).toBeDefined();
    const batchDefinition = JSON.stringify(stack.resolve((stack.batch!.stateMachine.node.defaultChild as { definitionString?: unknown }).definitionString));
    expect(batchDefinition).toMatch(/MaxConcurrency/);
    expect(Object.keys(template.toJSON().Outputs)).toContain('BatchStateMachineArn');
    const alarm = template.toJSON().Resources[stack.getLogicalId(stack.batch!.failedAlarm.node.defaultChild as never)] as Resource;
    expect(alarm.Properties.AlarmActions).toEqual([ref(stack.observability!.alarmTopic)]);
    expect(JSON.stringify(alarm.Properties.Metrics)).toContain(JSON.stringify(ref(stack.batch!.stateMachine)));
    expect(batchDefinition).toContain(String.raw`\"defaults\":{\"maxConcurrency\":4,\"toleratedFailurePercentage\":2}`);
  });
});

describe('guardrail questions', () => {
  const askRole = () => stack.resolve(stack.workflow.functions.askPerson.role!.roleName);
  const askStatements = () => resources('AWS::IAM::Policy').filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([askRole()])).flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);

  it('questionEmail gets a TLS-only question topic with that e-mail subscribed, which the ask step alone may publish to', () => {
    const topicRef = { Ref: stack.getLogicalId(stack.node.findChild('QuestionTopic').node.defaultChild as never) };
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'buyer@example.com', TopicArn: topicRef });
    const publishers = statements().filter((s) => actionsOf(s).includes('sns:Publish'));
    expect(publishers).toHaveLength(1);
    expect(publishers[0].Resource).toEqual(topicRef);
    expect(askStatements()).toContainEqual(expect.objectContaining({ Action: 'sns:Publish', Resource: topicRef }));
    const ask = resources('AWS::Lambda::Function').find((f) => f.Properties.Description?.includes('guardrail question'))!;
    expect(ask.Properties.Environment.Variables[ENV.questionTopicArn]).toEqual(topicRef);
    expect(Object.keys(template.toJSON().Outputs)).toContain('QuestionTopicArn');
  });

  it('the ask step may put events on the default bus and read session records, and nothing of the API key', () => {
    const actions = askStatements().flatMap(actionsOf);
    expect(actions).toContain('events:PutEvents');
    expect(actions.filter((a) => a.startsWith('secretsmanager:'))).toEqual([]);
    const put = askStatements().find((s) => actionsOf(s).includes('events:PutEvents'))!;
    expect(JSON.stringify(put.Resource)).toContain(':event-bus/default');
    // Only the ask step puts events (the cleanup reads them, it does not put them).
    expect(statements().filter((s) => actionsOf(s).includes('events:PutEvents'))).toHaveLength(1);
  });

  it('completing by poll, no Lambda may resume a task token: a person\'s answer comes through the CLI user\'s own rights', () => {
    expect(statements().filter((s) => actionsOf(s).some((a) => a === 'states:SendTaskSuccess' || a === 'states:SendTaskFailure'))).toEqual([]);
  });
});

describe('the rest of the stack', () => {
  it('an existing secret name is used instead of creating a secret', () => {
    expect(resources('AWS::SecretsManager::Secret')).toEqual([]);
    const readsSecret = statements().filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue') && !JSON.stringify(s.Resource).includes(':secret:webrun-sfn/*'));
    expect(readsSecret.length).toBeGreaterThan(0);
    for (const s of readsSecret) expect(JSON.stringify(s.Resource)).toContain(':secret:webrun/api-key-??????');
  });

  it('publishes the state machine, the alarm topic and the start-failure queue', () => {
    const outputs = template.toJSON().Outputs as Record<string, unknown>;
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['StateMachineArn', 'AlarmTopicArn', 'StartFailuresQueueUrl']));
  });
});
