/** The batch construct: its definition, grants, props, and its place in the stack and config (cdk-nag: checked-synth.test.ts). */
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib/core';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { BATCH_ITEMS_PREFIX, BATCH_RESULTS_PREFIX, BatchStateNames, ITEM_FORMATS } from '../../lambdas/shared/batch-contract';
import { parseConfig } from '../../lib/config';
import { flattenReference } from '../../lib/nag';
import { WebrunBatch, type WebrunBatchProps } from '../../lib/webrun-batch';
import { stackPropsFromConfig, WebrunStack } from '../../lib/webrun-stack';
import { WebrunWorkflow } from '../../lib/webrun-workflow';
import { resolveIntrinsics } from '../../local/asl';
import type { BatchDefinition } from '../../local/batch-workflow';

const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] as string[] };
const ENVIRONMENT = { account: '123456789012', region: 'us-east-1' };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]).map((r) => flattenReference(r));

function build(props: Omit<WebrunBatchProps, 'workflow'> = {}) {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'Test', { env: ENVIRONMENT });
  const workflow = new WebrunWorkflow(stack, 'Workflow');
  const batch = new WebrunBatch(stack, 'Batch', { ...props, workflow });
  const definition = JSON.parse(resolveIntrinsics(stack.resolve((batch.stateMachine.node.defaultChild as unknown as { definitionString: unknown }).definitionString)) as string) as BatchDefinition;
  const logicalId = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);
  return { stack, workflow, batch, definition, template: Template.fromStack(stack), logicalId };
}

describe('WebrunBatch', () => {
  let built: ReturnType<typeof build>;
  beforeAll(() => {
    built = build();
  });

  it('reads the items with a Distributed Map per format, its ItemReader naming the bucket and key from the input', () => {
    const { definition } = built;
    const inputTypes = { json: 'JSON', jsonl: 'JSONL', csv: 'CSV' } as const;
    for (const format of ITEM_FORMATS) {
      const map = definition.States[BatchStateNames.runItems[format]];
      expect(map).toMatchObject({
        Type: 'Map',
        ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: inputTypes[format] }, Parameters: { 'Bucket.$': '$.batch.items.bucket', 'Key.$': '$.batch.items.key' } },
        ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' }, StartAt: BatchStateNames.runItem[format] },
        MaxConcurrencyPath: '$.batch.maxConcurrency',
        ToleratedFailurePercentagePath: '$.batch.toleratedFailurePercentage',
        ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Prefix: BATCH_RESULTS_PREFIX } },
        End: true,
      });
    }
    expect(definition.States[BatchStateNames.runItems.csv].ItemReader).toMatchObject({ ReaderConfig: { CSVHeaderLocation: 'FIRST_ROW' } });
    const choice = definition.States[BatchStateNames.format];
    expect(choice.Default).toBe(BatchStateNames.unknownFormat);
    // A label names one Map state of the state machine (map-run children are "<state machine>/<label>:<id>").
    const labels = ITEM_FORMATS.map((format) => (definition.States[BatchStateNames.runItems[format]] as { Label?: string }).Label);
    expect(new Set(labels).size).toBe(ITEM_FORMATS.length);
    for (const label of labels) expect(label).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
  });

  it('runs each item as a child execution of the workflow (startExecution.sync:2), named by batch, item and redrive, the item merged into the template\'s vars', () => {
    const { definition, workflow, logicalId } = built;
    const map = definition.States[BatchStateNames.runItems.json] as unknown as { ItemSelector: unknown; ItemProcessor: { States: Record<string, Record<string, unknown>> } };
    expect(map.ItemSelector).toEqual({
      'template.$': '$.template',
      run: { 'vars.$': 'States.JsonMerge(States.StringToJson(States.JsonToString($.template.vars)), $$.Map.Item.Value, false)' },
      'item.$': '$$.Map.Item.Value',
      'index.$': '$$.Map.Item.Index',
      'batchId.$': '$.batchId',
    });
    const task = map.ItemProcessor.States[BatchStateNames.runItem.json];
    expect(task).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::states:startExecution.sync:2',
      Parameters: {
        StateMachineArn: `ref-${logicalId(workflow.stateMachine)}`,
        'Name.$': "States.Format('{}-{}-{}', $.batchId, $.index, $$.Execution.RedriveCount)",
        'Input.$': 'States.JsonMerge($.template, $.run, false)',
      },
      ResultSelector: { 'executionArn.$': '$.ExecutionArn', 'output.$': '$.Output' },
    });
    // A child's failure is final for its item: only refusals to start are retried (never States.TaskFailed).
    const retried = (task.Retry as Array<{ ErrorEquals: string[] }>).flatMap((r) => r.ErrorEquals);
    expect(retried).toEqual(['StepFunctions.ExecutionLimitExceeded', 'StepFunctions.AWSStepFunctionsException']);
    expect(definition.States[BatchStateNames.prepare].Parameters).toMatchObject({ 'batchId.$': "States.Hash($$.Execution.Id, 'MD5')" });
  });

  it('takes the defaults from its props, and a batch\'s input may override them', () => {
    expect(built.definition.States[BatchStateNames.defaults].Parameters).toMatchObject({ defaults: { maxConcurrency: 5, toleratedFailurePercentage: 0 } });
    const custom = build({ maxConcurrency: 12, toleratedFailurePercentage: 2.5, timeout: Duration.days(2) });
    expect(custom.definition.States[BatchStateNames.defaults].Parameters).toMatchObject({ defaults: { maxConcurrency: 12, toleratedFailurePercentage: 2.5 } });
    expect(custom.definition.TimeoutSeconds).toBe(2 * 86_400);
    expect(built.definition.States[BatchStateNames.prepare].Parameters).toMatchObject({ 'batch.$': 'States.JsonMerge($.defaults, $.input, false)' });
  });

  it('grants only what it needs: items under batches/, results under batch-results/, the workflow\'s executions; "*" only for X-Ray and log delivery', () => {
    const { template, logicalId, workflow } = built;
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('Batch'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
    const bucket = `<${logicalId(workflow.resultBucket)}.Arn>`;
    const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3.map((s) => [actionsOf(s).sort(), resourcesOf(s)])).toEqual([
      [['s3:GetObject'], [`${bucket}/${BATCH_ITEMS_PREFIX}*`]],
      [['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'], [`${bucket}/${BATCH_RESULTS_PREFIX}/*`]],
    ]);
    const start = statements.filter((s) => actionsOf(s).includes('states:StartExecution')).flatMap(resourcesOf);
    expect(start.sort()).toEqual([`<${logicalId(built.batch.stateMachine)}>`, `<${logicalId(workflow.stateMachine)}>`].sort());
    for (const s of statements) {
      if (!resourcesOf(s).includes('*')) continue;
      expect(actionsOf(s).every((a) => a.startsWith('xray:') || a.startsWith('logs:'))).toBe(true);
    }
  });

  it('logs errors without execution data, traces, and alarms when a batch fails or times out', () => {
    const { template, logicalId, batch } = built;
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', Match.objectLike({
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ERROR', IncludeExecutionData: false }),
    }));
    const alarm = template.findResources('AWS::CloudWatch::Alarm')[logicalId(batch.failedAlarm)];
    expect(JSON.stringify(alarm.Properties.Metrics)).toContain('ExecutionsFailed');
    expect(JSON.stringify(alarm.Properties.Metrics)).toContain('ExecutionsTimedOut');
  });

  it.each([
    [{ maxConcurrency: 0 }, /maxConcurrency must be a whole number from 1 to 10000, got 0/],
    [{ maxConcurrency: 2.5 }, /maxConcurrency/],
    [{ toleratedFailurePercentage: -1 }, /toleratedFailurePercentage must be a number from 0 to 100, got -1/],
    [{ toleratedFailurePercentage: 101 }, /toleratedFailurePercentage/],
    [{ timeout: Duration.minutes(10) }, /timeout must be a whole number of seconds from 3600/],
    [{ timeout: Duration.millis(7_200_500) }, /timeout must be a whole number of seconds from 3600 to 31536000 \(1 hour to 1 year\), got 7200.5/],
  ])('refuses props %j', (props, message) => {
    expect(() => build(props)).toThrow(message);
  });
});

describe('the stack and config with batches', () => {
  it('adds no batch state machine unless config batch.enabled', () => {
    const app = new App({ context: NO_BUNDLING });
    const stack = new WebrunStack(app, 'NoBatch', { env: ENVIRONMENT, ...stackPropsFromConfig(parseConfig({})) });
    expect(stack.batch).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('AWS::StepFunctions::StateMachine', 1);
  });

  it('composes the batch from config: its settings, an output, its alarm on the alarm topic and a dashboard row', () => {
    const config = parseConfig({ batch: { enabled: true, maxConcurrency: 3, toleratedFailurePercentage: 10 } });
    expect(config.batch).toEqual({ enabled: true, maxConcurrency: 3, toleratedFailurePercentage: 10 });
    const app = new App({ context: NO_BUNDLING });
    const stack = new WebrunStack(app, 'WithBatch', { env: ENVIRONMENT, ...stackPropsFromConfig(config) });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 2);
    const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);
    template.hasOutput('BatchStateMachineArn', { Value: { Ref: id(stack.batch!.stateMachine) } });
    const alarm = template.findResources('AWS::CloudWatch::Alarm')[id(stack.batch!.failedAlarm)];
    expect(alarm.Properties.AlarmActions).toEqual([{ Ref: id(stack.observability!.alarmTopic) }]);
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody);
    expect(body).toContain('Batches failed or timed out');
    expect(body).toContain(id(stack.batch!.stateMachine));
    const definition = JSON.parse(resolveIntrinsics(stack.resolve((stack.batch!.stateMachine.node.defaultChild as unknown as { definitionString: unknown }).definitionString)) as string) as BatchDefinition;
    expect(definition.States[BatchStateNames.defaults].Parameters).toMatchObject({ defaults: { maxConcurrency: 3, toleratedFailurePercentage: 10 } });
  });

  it('warns when its workflow has no session cleanup: a stopped batch would leave its children\'s sessions open', () => {
    const warnings = (workflowProps: ConstructorParameters<typeof WebrunWorkflow>[2]) => {
      const app = new App({ context: NO_BUNDLING });
      const stack = new Stack(app, 'Warn', { env: ENVIRONMENT });
      new WebrunBatch(stack, 'Batch', { workflow: new WebrunWorkflow(stack, 'Workflow', workflowProps) });
      return Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('sessionCleanup: false'));
    };
    expect(warnings({ sessionCleanup: false })).toHaveLength(1);
    expect(warnings({})).toHaveLength(0);
  });

  it('keeps the batch\'s log group as it keeps the workflow\'s (logRemovalPolicy), unless the batch says otherwise; never a snapshot', () => {
    const batchLogGroup = (stack: WebrunStack) => Template.fromStack(stack).findResources('AWS::Logs::LogGroup')[stack.getLogicalId(stack.batch!.logGroup.node.defaultChild as Parameters<Stack['getLogicalId']>[0])];
    const retained = new WebrunStack(new App({ context: NO_BUNDLING }), 'Retained', { env: ENVIRONMENT, workflow: { logRemovalPolicy: RemovalPolicy.RETAIN }, batch: {} });
    expect(batchLogGroup(retained).DeletionPolicy).toBe('Retain');
    const own = new WebrunStack(new App({ context: NO_BUNDLING }), 'Own', { env: ENVIRONMENT, workflow: { logRemovalPolicy: RemovalPolicy.RETAIN }, batch: { logRemovalPolicy: RemovalPolicy.DESTROY } });
    expect(batchLogGroup(own).DeletionPolicy).toBe('Delete');
    expect(batchLogGroup(new WebrunStack(new App({ context: NO_BUNDLING }), 'Default', { env: ENVIRONMENT, batch: {} })).DeletionPolicy).toBe('Delete');
    expect(() => build({ logRemovalPolicy: RemovalPolicy.SNAPSHOT })).toThrow(/WebrunBatch: logRemovalPolicy cannot be SNAPSHOT/);
  });

  it.each([
    [{ batch: { maxConcurrency: 0 } }, 'batch.maxConcurrency: must be between 1 and 10000, got 0'],
    [{ batch: { toleratedFailurePercentage: 150 } }, 'batch.toleratedFailurePercentage: must be a number from 0 to 100, got 150'],
    [{ batch: { enabled: 'yes' } }, 'batch.enabled: must be true or false'],
    [{ batch: { size: 1 } }, 'batch.size: is not a known field (allowed: enabled, maxConcurrency, toleratedFailurePercentage)'],
  ])('config %j is refused naming the field', (raw, message) => {
    expect(() => parseConfig(raw)).toThrow(message);
  });
});

