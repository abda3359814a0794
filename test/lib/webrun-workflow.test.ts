import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib/core';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type * as lambdaEntry from '../../lambdas/index';
import { WEBRUN_HANDLERS, WebrunErrors, type WebrunHandlerName } from '../../lambdas/shared/contract';
import { SITE_SECRET_PREFIX } from '../../lambdas/shared/contract';
import { ENV } from '../../lambdas/shared/contract';
import { LambdaLogLevel } from '../../lib/lambda-log-level';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { flattenReference } from '../../lib/nag';
import { WebrunStack } from '../../lib/webrun-stack';
import { Completion, WebrunWorkflow, type WebrunWorkflowProps } from '../../lib/webrun-workflow';
import { StateNames } from '../../lambdas/shared/contract';
import { definitionOf, placeholderFunctionArn, reachable, type AslDefinition, type AslState } from '../helpers/asl';

/** Skip esbuild: the assertions are about the template, not the bundles. */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] as string[] };
const ENVIRONMENT = { account: '123456789012', region: 'us-east-1' };

type Resource = { Type: string; Properties: Record<string, any>; Metadata?: Record<string, unknown> };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

function build(props?: WebrunWorkflowProps): { stack: Stack; workflow: WebrunWorkflow; template: Template } {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'Test', { env: ENVIRONMENT });
  const workflow = new WebrunWorkflow(stack, 'Workflow', props);
  return { stack, workflow, template: Template.fromStack(stack) };
}

function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);
}

function statements(template: Template): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>).flatMap(
    (policy) => policy.Properties.PolicyDocument.Statement as Statement[],
  );
}

const flatArn = (value: unknown) => flattenReference(value);
const isSiteCredentialGrant = (s: Statement) => flatArn(s.Resource).endsWith(`:secret:${SITE_SECRET_PREFIX}*`);
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);
const webrunErrors = (state: AslState) => new Set((state.Retry ?? []).flatMap((r) => r.ErrorEquals).filter((e) => e.startsWith('Webrun.')));

const FINAL_ERRORS = [WebrunErrors.InvalidInput, WebrunErrors.Unauthorized, WebrunErrors.TaskFailed, WebrunErrors.GuardrailTriggered, WebrunErrors.InsufficientBalance];
const FAILURE_REPORTERS: ReadonlySet<string> = new Set([StateNames.reportStartFailure, StateNames.terminateAfterFailure]);

describe('WebrunWorkflow (default props)', () => {
  let stack: Stack;
  let workflow: WebrunWorkflow;
  let template: Template;
  let definition: AslDefinition;
  let functions: Record<string, Resource>;

  beforeAll(() => {
    ({ stack, workflow, template } = build());
    definition = definitionOf(template);
    functions = template.findResources('AWS::Lambda::Function') as Record<string, Resource>;
  });

  describe('state machine', () => {
    it('is a Standard state machine with tracing', () => {
      template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
      template.hasResourceProperties('AWS::StepFunctions::StateMachine', Match.objectLike({ StateMachineType: 'STANDARD', TracingConfiguration: { Enabled: true } }));
    });

    it('has an execution timeout (2 hours by default)', () => {
      expect(definition.TimeoutSeconds).toBe(7200);
    });

    it('logs errors to its own log group without execution data', () => {
      template.hasResourceProperties(
        'AWS::StepFunctions::StateMachine',
        Match.objectLike({
          LoggingConfiguration: {
            IncludeExecutionData: false,
            Level: 'ERROR',
            Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logicalId(stack, workflow.logGroup), 'Arn'] } } }],
          },
        }),
      );
    });
  });

  describe('Lambdas', () => {
    it('builds the five workflow functions and the cleanup function', () => {
      expect(Object.keys(functions)).toHaveLength(6);
      expect(Object.keys(functions)).toEqual(
        expect.arrayContaining([...Object.values(workflow.functions), workflow.cleanup!.function].map((fn) => logicalId(stack, fn))),
      );
    });

    it('runs in each function its own export of the one Lambda bundle', () => {
      const expected = Object.entries({ ...workflow.functions, cleanupSession: workflow.cleanup!.function }).map(([name, fn]) => [logicalId(stack, fn), `index.${name}`]);
      expect(Object.entries(functions).map(([id, fn]) => [id, fn.Properties.Handler]).sort()).toEqual(expected.sort());
      // The handler names the construct may use are the entry point's exports, no more and no fewer.
      expectTypeOf<keyof typeof lambdaEntry>().toEqualTypeOf<WebrunHandlerName>();
    });

    it('runs every function on Node.js 22, arm64, with active tracing', () => {
      for (const fn of Object.values(functions)) {
        expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], TracingConfig: { Mode: 'Active' } });
      }
    });

    it('gives every function that calls the API the secret ARN, never the API key; the ask step not even the ARN', () => {
      const secretRef = { Ref: logicalId(stack, workflow.apiKeySecret) };
      const askPerson = logicalId(stack, workflow.functions.askPerson);
      for (const [id, fn] of Object.entries(functions)) {
        const variables = fn.Properties.Environment.Variables as Record<string, unknown>;
        expect(variables[ENV.secretArn]).toEqual(id === askPerson ? undefined : secretRef);
        expect(Object.keys(variables).filter((name) => /API_?KEY/i.test(name))).toEqual([]);
        // No dynamic reference or attribute that would put the secret's value into the configuration.
        expect(JSON.stringify(variables)).not.toMatch(/resolve:secretsmanager|SecretString/);
      }
    });

    it('lets each function write to its own log group only (no AWSLambdaBasicExecutionRole)', () => {
      for (const role of Object.values(template.findResources('AWS::IAM::Role') as Record<string, Resource>)) {
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      }
      for (const fn of Object.values(functions)) {
        expect(fn.Properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON', LogGroup: { Ref: expect.any(String) } });
      }
      const logStatements = statements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('logs:') && a !== 'logs:CreateLogDelivery'));
      const logWrites = logStatements.filter((s) => actionsOf(s).includes('logs:PutLogEvents'));
      expect(logWrites).toHaveLength(6);
      for (const s of logWrites) expect(s.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/Logs/), 'Arn'] });
    });
  });

  describe('grants', () => {
    it('scopes secret reads to the API key secret, for the five functions that call the API only', () => {
      const secretRef = { Ref: logicalId(stack, workflow.apiKeySecret) };
      const secretStatements = statements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')) && !isSiteCredentialGrant(s));
      expect(secretStatements).toHaveLength(5);
      for (const s of secretStatements) {
        expect(resourcesOf(s)).toEqual([secretRef]);
        expect(actionsOf(s).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
      }
    });

    it('lets the send, poll and terminate functions alone read site-credential secrets, by GetSecretValue on the webrun-sfn/ prefix only', () => {
      // Terminate too: it redacts the run's site credentials from its error, and withholds the message when it cannot read them.
      const grants = Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>).flatMap((policy) =>
        (policy.Properties.PolicyDocument.Statement as Statement[]).filter(isSiteCredentialGrant).map((s) => ({ roles: policy.Properties.Roles, s })),
      );
      const { sendTask, pollTask, terminateSession } = workflow.functions;
      expect(grants.map((g) => g.roles)).toEqual(expect.arrayContaining([sendTask, pollTask, terminateSession].map((fn) => [stack.resolve(fn.role!.roleName)])));
      expect(grants).toHaveLength(3);
      for (const { s } of grants) {
        expect(actionsOf(s)).toEqual(['secretsmanager:GetSecretValue']);
        expect(flatArn(s.Resource)).toBe('arn:<AWS::Partition>:secretsmanager:us-east-1:123456789012:secret:webrun-sfn/*');
      }
    });

    it('uses "*" only for X-Ray and CloudWatch Logs delivery, which have no resource-level permissions', () => {
      const wildcard = statements(template).filter((s) => resourcesOf(s).includes('*'));
      expect(wildcard.length).toBeGreaterThan(0);
      for (const s of wildcard) for (const action of actionsOf(s)) expect(action).toMatch(/^(xray:|logs:(Create|Get|Update|Delete|List)LogDeliver|logs:(PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)$)/);
    });

    it('grants each function the session-table actions its handler calls: the start marks a session it ended itself, the failure report reads a failed start\'s record', () => {
      const sessionTable = logicalId(stack, workflow.sessionTable);
      const actionsOn = (fn: lambda.IFunction) => {
        const role = JSON.stringify([stack.resolve(fn.role!.roleName)]);
        return Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>)
          .filter((p) => JSON.stringify(p.Properties.Roles) === role)
          .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
          .filter((st) => JSON.stringify(st.Resource).includes(sessionTable))
          .flatMap(actionsOf)
          .sort();
      };
      // sessions.started (PutItem) and, for a balance under minBalanceUsd, sessions.ended (UpdateItem).
      expect(actionsOn(workflow.functions.startSession)).toEqual(['dynamodb:PutItem', 'dynamodb:UpdateItem']);
      // sessions.get of a failed start (GetItem) and sessions.ended (UpdateItem).
      expect(actionsOn(workflow.functions.terminateSession)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    });

    it('grants no function a Step Functions read: the cleanup reads the session table, never an execution\'s history', () => {
      const states = statements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('states:')));
      expect(states.flatMap(actionsOf).filter((a) => /^states:(GetExecutionHistory|DescribeExecution)$/.test(a))).toEqual([]);
    });
  });

  describe('definition', () => {
    it('invokes the workflow functions from its Task states', () => {
      const fnArn = (fn: keyof WebrunWorkflow['functions']) => placeholderFunctionArn(logicalId(stack, workflow.functions[fn]));
      expect(definition.States[StateNames.start].Resource).toBe(fnArn('startSession'));
      expect(definition.States[StateNames.send].Resource).toBe(fnArn('sendTask'));
      expect(definition.States[StateNames.poll].Resource).toBe(fnArn('pollTask'));
      expect(definition.States[StateNames.terminate].Resource).toBe(fnArn('terminateSession'));
    });

    it('"Start session" waits up to about an hour for a free session (SESSION_LIMIT_REACHED), first of its retries', () => {
      expect(definition.States[StateNames.start].Retry?.[0]).toEqual({
        ErrorEquals: [WebrunErrors.SessionLimitReached], IntervalSeconds: 10, BackoffRate: 2, MaxAttempts: 60, MaxDelaySeconds: 60, JitterStrategy: 'FULL',
      });
      expect(definition.States[StateNames.send].Retry?.flatMap((r) => r.ErrorEquals)).not.toContain(WebrunErrors.SessionLimitReached);
    });

    it.each([StateNames.start, StateNames.send])('retries "%s" (not idempotent) only on refused requests', (name) => {
      const state = definition.States[name];
      const refused = name === StateNames.start ? [WebrunErrors.RateLimited, WebrunErrors.ServiceUnavailable, WebrunErrors.SessionLimitReached] : [WebrunErrors.RateLimited, WebrunErrors.ServiceUnavailable];
      expect([...webrunErrors(state)].sort()).toEqual(refused.sort());
      const all = (state.Retry ?? []).flatMap((r) => r.ErrorEquals);
      expect(all).not.toContain(WebrunErrors.ApiError);
      expect(all).not.toContain('States.ALL');
      expect(all).not.toContain('States.Timeout');
      for (const final of FINAL_ERRORS) expect(all).not.toContain(final);
    });

    it('retries "Poll task" on a result the store did not take (polling again reads it again), never "Send task" (it would send the task twice)', () => {
      expect(webrunErrors(definition.States[StateNames.poll])).toContain(WebrunErrors.ResultStoreError);
      expect(webrunErrors(definition.States[StateNames.send])).not.toContain(WebrunErrors.ResultStoreError);
    });

    it.each([StateNames.poll, StateNames.terminate])('retries "%s" (idempotent) also on ApiError, never on final errors', (name) => {
      const retried = webrunErrors(definition.States[name]);
      for (const transient of [WebrunErrors.RateLimited, WebrunErrors.ServiceUnavailable, WebrunErrors.ApiError]) expect(retried).toContain(transient);
      for (const final of FINAL_ERRORS) expect(retried).not.toContain(final);
      const all = (definition.States[name].Retry ?? []).flatMap((r) => r.ErrorEquals);
      expect(all).not.toContain('States.ALL');
      // A function that timed out or ran out of memory, as Step Functions names it either way.
      expect(all).toEqual(expect.arrayContaining(['Sandbox.Timedout', 'Lambda.Unknown']));
    });

    it('"Terminate session after failure" retries its terminate itself and reports; only Lambda faults are retried by the state', () => {
      const retried = (definition.States[StateNames.terminateAfterFailure].Retry ?? []).flatMap((r) => r.ErrorEquals);
      expect(retried.every((e) => e.startsWith('Lambda.'))).toBe(true);
      expect(definition.States[StateNames.terminateAfterFailure].Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: StateNames.reportWithoutCleanup, ResultPath: '$.cleanupFailure' })]);
    });

    it('every Task state retries a throttled invocation (the function did not run); a step that sends something never retries Lambda\'s other faults', () => {
      const tasks = Object.entries(definition.States).filter(([, s]) => s.Type === 'Task');
      for (const [name, state] of tasks) {
        expect((state.Retry ?? []).flatMap((r) => r.ErrorEquals), name).toContain('Lambda.TooManyRequestsException');
      }
      // The person's answer, the task and the session are sent once: the function may already have run.
      for (const name of [StateNames.start, StateNames.send, StateNames.answerQuestion]) {
        expect((definition.States[name].Retry ?? []).flatMap((r) => r.ErrorEquals), name).not.toContain('Lambda.ServiceException');
        expect((definition.States[name].Retry ?? []).flatMap((r) => r.ErrorEquals), name).not.toContain('Lambda.Unknown');
      }
    });

    it('hands every function the execution ARN, and each step the run and its loop, writing only the loop back', () => {
      const tasks = Object.entries(definition.States).filter(([, s]) => s.Type === 'Task');
      expect(tasks.length).toBeGreaterThanOrEqual(6);
      for (const [name, state] of tasks) {
        // A task-token wait invokes through lambda:invoke, whose Parameters wrap the payload.
        const parameters = state.Parameters as Record<string, unknown>;
        const payload = (name === StateNames.askPerson ? parameters.Payload : parameters) as Record<string, unknown>;
        expect(payload['executionArn.$'], name).toBe('$$.Execution.Id');
      }
      expect(definition.States[StateNames.askPerson].Resource).toMatch(/:lambda:invoke\.waitForTaskToken$/);
      expect((definition.States[StateNames.askPerson].Parameters as { Payload: Record<string, unknown> }).Payload['token.$']).toBe('$$.Task.Token');
      for (const name of [StateNames.send, StateNames.poll]) {
        expect(definition.States[name].Parameters, name).toEqual({ 'executionArn.$': '$$.Execution.Id', 'run.$': '$.run', 'loop.$': '$.loop' });
        expect(definition.States[name].ResultPath, name).toBe('$.loop');
      }
      // The success terminate's answer is the output itself.
      expect(definition.States[StateNames.terminate].ResultPath).toBeUndefined();
    });

    it('builds a report without any Lambda when the failure step itself fails: every completed result, sessionEnded false', () => {
      const pass = definition.States[StateNames.reportWithoutCleanup];
      expect(pass.Parameters).toMatchObject({ 'sessionId.$': '$.run.sessionId', 'taskIndex.$': '$.loop.index', 'completed.$': '$.loop.results', sessionEnded: false });
      expect(definition.States[StateNames.formatReport].Parameters).toEqual({ report: { 'error.$': '$.failure.Error', 'cause.$': 'States.JsonToString($.unconfirmed)' } });
      expect(definition.States[StateNames.formatReport].Next).toBe(StateNames.failed);
    });

    it('catches every error of every Task state into the session-ending failure path', () => {
      const tasks = Object.entries(definition.States).filter(([name, s]) => s.Type === 'Task' && !FAILURE_REPORTERS.has(name));
      expect(tasks.map(([name]) => name).sort()).toEqual([StateNames.poll, StateNames.send, StateNames.start, StateNames.terminate, StateNames.askPerson, StateNames.answerQuestion].sort());
      for (const [name, state] of tasks) {
        const expected = name === StateNames.start ? StateNames.reportStartFailure : StateNames.terminateAfterFailure;
        // Only the question's own timeout is turned into a named error first (Webrun.GuardrailUnanswered).
        const catches = name === StateNames.askPerson ? state.Catch?.slice(1) : state.Catch;
        expect(catches, name).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: expected })]);
      }
      expect(definition.States[StateNames.askPerson].Catch?.[0]).toMatchObject({ ErrorEquals: ['States.Timeout'], Next: StateNames.questionUnanswered });
      expect(definition.States[StateNames.questionUnanswered].Next).toBe(StateNames.terminateAfterFailure);
      expect(definition.States[StateNames.terminateAfterFailure].Next).toBe(StateNames.failed);
      expect(definition.States[StateNames.reportStartFailure].Next).toBe(StateNames.failed);
    });

    it('reaches Succeed only through "Terminate session"', () => {
      const succeeds = Object.entries(definition.States).filter(([, s]) => s.Type === 'Succeed').map(([name]) => name);
      expect(succeeds).toEqual([StateNames.succeeded]);
      expect(reachable(definition).has(StateNames.succeeded)).toBe(true);
      const withoutTerminate = reachable(definition, new Set([StateNames.terminate]));
      for (const name of succeeds) expect(withoutTerminate.has(name), `${name} is reachable without terminating the session`).toBe(false);
    });
  });

  describe('session cleanup', () => {
    it('routes aborted, timed-out and failed executions of this state machine to the cleanup function', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.states'],
          'detail-type': ['Step Functions Execution Status Change'],
          detail: { stateMachineArn: [{ Ref: logicalId(stack, workflow.stateMachine) }], status: ['ABORTED', 'TIMED_OUT', 'FAILED'] },
        },
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [logicalId(stack, workflow.cleanup!.function), 'Arn'] },
            RetryPolicy: { MaximumRetryAttempts: Match.anyValue(), MaximumEventAgeInSeconds: Match.anyValue() },
            DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(stack, workflow.cleanup!.deadLetterQueue), 'Arn'] } },
          }),
        ],
      });
      template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com', FunctionName: { 'Fn::GetAtt': [logicalId(stack, workflow.cleanup!.function), 'Arn'] } });
    });

    it('retries failed cleanups twice, then dead-letters them into an encrypted, SSL-only queue with an alarm', () => {
      const queueArn = { 'Fn::GetAtt': [logicalId(stack, workflow.cleanup!.deadLetterQueue), 'Arn'] };
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: logicalId(stack, workflow.cleanup!.function) }, MaximumRetryAttempts: 2 });
      template.hasResourceProperties('AWS::Lambda::Function', Match.objectLike({ DeadLetterConfig: { TargetArn: queueArn } }));
      template.hasResourceProperties('AWS::SQS::Queue', Match.objectLike({ SqsManagedSseEnabled: true }));
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        PolicyDocument: Match.objectLike({
          Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
        }),
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', Match.objectLike({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 }));
    });
  });
});

describe('WebrunWorkflow props', () => {
  // Validation runs before any resource is created, so these builds are cheap.
  const construct = (props: WebrunWorkflowProps) => () => new WebrunWorkflow(new Stack(new App({ context: NO_BUNDLING }), 'Props'), 'Workflow', props);

  it('pollHold sets the poll Lambda\'s timeout (hold + 30 s), never under the 90 s a guardrail answer it sends may take', () => {
    const timeoutOf = (pollHold: Duration) => {
      const { stack, workflow, template } = build({ pollHold });
      return (template.toJSON().Resources[logicalId(stack, workflow.functions.pollTask)] as Resource).Properties.Timeout;
    };
    expect(timeoutOf(Duration.seconds(0))).toBe(90);
    expect(timeoutOf(Duration.seconds(120))).toBe(150);
  });

  it('lambdaLogLevel is Lambda\'s application log level too: with the JSON log format Lambda drops lines under it (INFO unless set)', () => {
    const { template } = build({ lambdaLogLevel: LambdaLogLevel.DEBUG });
    const functions = Object.values(template.findResources('AWS::Lambda::Function') as Record<string, Resource>);
    expect(functions.length).toBeGreaterThanOrEqual(5);
    for (const fn of functions) {
      expect(fn.Properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON', ApplicationLogLevel: 'DEBUG' });
      expect((fn.Properties.Environment as { Variables: Record<string, string> }).Variables.POWERTOOLS_LOG_LEVEL).toBe('DEBUG');
    }
  });

  it('rejects a baseUrl that is not https, naming the prop', () => {
    expect(construct({ baseUrl: 'http://connect.webrun.ai' })).toThrow(/baseUrl must be https/);
    expect(construct({ baseUrl: 'not a url' })).toThrow(/baseUrl is not a URL/);
  });

  it('rejects a pollInterval of 0 or of a fraction of a second, naming the prop', () => {
    expect(construct({ pollInterval: Duration.seconds(0) })).toThrow(/pollInterval must be/);
    expect(construct({ pollInterval: Duration.millis(1500) })).toThrow('WebrunWorkflow: pollInterval must be a whole number of seconds from 1 to 300 (1 s to 5 min), got 1.5');
  });

  it.each([0, 1, 5, 20, 45, 90, 8 * 86_400])('rejects an observability.period of %i s, which CloudWatch alarms or CDK\'s metrics refuse, naming the prop', (seconds) => {
    expect(construct({ observability: { period: Duration.seconds(seconds) } })).toThrow(`WebrunWorkflow: observability.period must be 10 or 30 seconds, or a whole number of minutes up to 7 days (what CloudWatch alarms take), got ${seconds} seconds`);
  });

  it('rejects a timeout under 5 minutes, naming the prop', () => {
    expect(construct({ timeout: Duration.minutes(1) })).toThrow(/timeout must be/);
  });

  describe('with an existing secret, no session cleanup and no site credentials', () => {
    const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:webrun-key-AbCdEf';
    let template: Template;

    beforeAll(() => {
      const app = new App({ context: NO_BUNDLING });
      const stack = new Stack(app, 'Existing', { env: ENVIRONMENT });
      const apiKeySecret = secretsmanager.Secret.fromSecretCompleteArn(stack, 'Key', secretArn);
      new WebrunWorkflow(stack, 'Workflow', { apiKeySecret, sessionCleanup: false, siteCredentials: false });
      template = Template.fromStack(stack);
    });

    it('creates no secret and hands the given ARN to the functions', () => {
      template.resourceCountIs('AWS::SecretsManager::Secret', 0);
      const callers = Object.values(template.findResources('AWS::Lambda::Function') as Record<string, Resource>).filter((fn) => !String(fn.Properties.Description).includes('guardrail question'));
      expect(callers).toHaveLength(4);
      for (const fn of callers) expect(fn.Properties.Environment.Variables[ENV.secretArn]).toEqual(secretArn);
    });

    it('creates no cleanup rule, function or queue', () => {
      template.resourceCountIs('AWS::Events::Rule', 0);
      template.resourceCountIs('AWS::SQS::Queue', 0);
      template.resourceCountIs('AWS::Lambda::Function', 5);
    });

    it('grants no read on site-credential secrets', () => {
      expect(statements(template).filter(isSiteCredentialGrant)).toEqual([]);
    });
  });
});

describe('WebrunWorkflow observability (alarms, topic, dashboard)', () => {
  const alarmsOf = (template: Template) => Object.values(template.findResources('AWS::CloudWatch::Alarm') as Record<string, Resource>);
  const topicRef = (stack: Stack, workflow: WebrunWorkflow) => stack.resolve(workflow.observability!.alarmTopic.topicArn);

  describe('a bare WebrunWorkflow in a plain Stack (default props)', () => {
    let stack: Stack;
    let workflow: WebrunWorkflow;
    let template: Template;
    beforeAll(() => ({ stack, workflow, template } = build()));

    it('alarms on failed and timed-out executions, cleanup errors and the cleanup dead letters, each to its own TLS-only topic', () => {
      template.resourceCountIs('AWS::SNS::Topic', 1);
      template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
      const alarms = alarmsOf(template);
      expect(alarms).toHaveLength(4);
      for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([topicRef(stack, workflow)]);
      const metrics = alarms.map((a) => a.Properties.MetricName ?? 'math').sort();
      expect(metrics).toEqual(['ApproximateNumberOfMessagesVisible', 'ExecutionsFailed', 'ExecutionsTimedOut', 'math']);
      expect(workflow.observability!.alarms).toHaveLength(4);
      expect(workflow.observability!.alarms).toContain(workflow.cleanup!.deadLetterAlarm);
      expect(workflow.observability!.costAlarm).toBeUndefined();
    });

    it('makes a dashboard without a fixed name (two workflows in one account never collide), its alarm widget showing every alarm', () => {
      const [dashboard, ...more] = Object.values(template.findResources('AWS::CloudWatch::Dashboard') as Record<string, Resource>);
      expect(more).toEqual([]);
      expect(dashboard.Properties.DashboardName).toBeUndefined();
      const body = JSON.stringify(stack.resolve(dashboard.Properties.DashboardBody));
      for (const alarm of workflow.observability!.alarms) expect(body).toContain(logicalId(stack, alarm));
    });

    it('two workflows fit in one stack', () => {
      const app = new App({ context: NO_BUNDLING });
      const two = new Stack(app, 'Two', { env: ENVIRONMENT });
      new WebrunWorkflow(two, 'A');
      new WebrunWorkflow(two, 'B');
      const t = Template.fromStack(two);
      t.resourceCountIs('AWS::CloudWatch::Dashboard', 2);
      t.resourceCountIs('AWS::SNS::Topic', 2);
    });
  });

  it('observability: false makes no alarm, topic or dashboard', () => {
    const { workflow, template } = build({ observability: false });
    for (const type of ['AWS::CloudWatch::Alarm', 'AWS::SNS::Topic', 'AWS::SNS::Subscription', 'AWS::CloudWatch::Dashboard']) template.resourceCountIs(type, 0);
    expect(workflow.observability).toBeUndefined();
    expect(workflow.cleanup!.deadLetterAlarm).toBeUndefined();
    // The session cleanup itself stays: its queue is still there for an app's own alarm.
    template.resourceCountIs('AWS::SQS::Queue', 1);
  });

  it('observability: false with completion by webhook makes no doorbell alarm either', () => {
    const { workflow, template } = build({ observability: false, completion: Completion.WEBHOOK });
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    expect(workflow.doorbell!.receiverErrorsAlarm).toBeUndefined();
  });

  it('observability: true is the default', () => {
    const { template } = build({ observability: true });
    expect(alarmsOf(template)).toHaveLength(4);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('takes an existing topic, an e-mail, a cost threshold and no dashboard', () => {
    const app = new App({ context: NO_BUNDLING });
    const stack = new Stack(app, 'Options', { env: ENVIRONMENT });
    const topicArn = 'arn:aws:sns:us-east-1:123456789012:ops-alarms';
    const alarmTopic = sns.Topic.fromTopicArn(stack, 'OpsAlarms', topicArn);
    const workflow = new WebrunWorkflow(stack, 'Workflow', { observability: { alarmTopic, alarmEmail: 'ops@example.com', costAlarmUsd: 10, dashboard: false } });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    expect(workflow.observability!.dashboard).toBeUndefined();
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: topicArn });
    const alarms = alarmsOf(template);
    expect(alarms).toHaveLength(5);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([topicArn]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'CostUsd', Threshold: 10, Period: 86_400 });
  });

  it('rejects a cost threshold that is not a positive number', () => {
    expect(() => build({ observability: { costAlarmUsd: 0 } })).toThrow(/costAlarmUsd must be a positive number/);
  });

  it('with completion by webhook, the doorbell alarms notify the topic too', () => {
    const { stack, workflow, template } = build({ completion: Completion.WEBHOOK });
    const alarms = alarmsOf(template);
    expect(alarms).toHaveLength(6);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([topicRef(stack, workflow)]);
    expect(workflow.observability!.alarms).toEqual(expect.arrayContaining([workflow.doorbell!.receiverErrorsAlarm, workflow.doorbell!.fallbacksAlarm]));
  });

  it('observability.period is the period of every alarm but the cost alarm, the cleanup\'s and doorbell\'s included, each named by its stack', () => {
    const { template } = build({ completion: Completion.WEBHOOK, observability: { period: Duration.minutes(1), costAlarmUsd: 5 } });
    const alarms = alarmsOf(template);
    expect(alarms).toHaveLength(7);
    const periods = (a: Resource) => (a.Properties.Period !== undefined ? [a.Properties.Period] : (a.Properties.Metrics as Array<{ MetricStat?: { Period: number } }>).flatMap((m) => (m.MetricStat ? [m.MetricStat.Period] : [])));
    for (const alarm of alarms) {
      expect(periods(alarm), String(alarm.Properties.AlarmDescription)).toEqual(alarm.Properties.MetricName === 'CostUsd' ? [86_400] : expect.arrayContaining([60]));
      expect(new Set(periods(alarm)).size).toBe(1);
      const description = alarm.Properties.AlarmDescription as string | { 'Fn::Join': [string, unknown[]] };
      expect(typeof description === 'string' ? description : description['Fn::Join'][1][0]).toMatch(/^Test: /);
    }
    expect(alarms.map((a) => a.Properties.MetricName ?? 'math').sort()).toEqual(
      ['ApproximateNumberOfMessagesVisible', 'CostUsd', 'Errors', 'ExecutionsFailed', 'ExecutionsTimedOut', 'WebhookFallbacks', 'math'],
    );
  });

  it('alarms added after the workflow (a trigger\'s dead-letter queue) notify the topic and join the dashboard', () => {
    const app = new App({ context: NO_BUNDLING });
    const stack = new Stack(app, 'Later', { env: ENVIRONMENT });
    const workflow = new WebrunWorkflow(stack, 'Workflow');
    const queue = new sqs.Queue(stack, 'MyStartFailures');
    const alarm = workflow.observability!.alarmOnDeadLetters('MyStartFailures', queue, 'a start of mine failed.');
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack, queue), 'QueueName'] } }],
      Statistic: 'Maximum',
      AlarmActions: [topicRef(stack, workflow)],
      AlarmDescription: 'Later: a start of mine failed.',
    });
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard') as Record<string, Resource>);
    expect(JSON.stringify(stack.resolve(dashboard.Properties.DashboardBody))).toContain(logicalId(stack, alarm));
  });
});

describe('WebrunWorkflow log groups', () => {
  const logGroups = (template: Template) => Object.values(template.toJSON().Resources as Record<string, Resource & { DeletionPolicy?: string; UpdateReplacePolicy?: string }>)
    .filter((r) => r.Type === 'AWS::Logs::LogGroup');

  it('are deleted with the stack by default: the state machine\'s and every Lambda\'s', () => {
    const groups = logGroups(build().template);
    // The state machine, five workflow Lambdas and the session cleanup.
    expect(groups).toHaveLength(7);
    for (const group of groups) expect([group.DeletionPolicy, group.UpdateReplacePolicy]).toEqual(['Delete', 'Delete']);
  });

  it.each([Completion.POLL, Completion.WEBHOOK])('are all kept with logRemovalPolicy RETAIN (completion %s)', (completion) => {
    const groups = logGroups(build({ completion, logRemovalPolicy: RemovalPolicy.RETAIN, logRetention: 90 }).template);
    expect(groups).toHaveLength(completion === Completion.WEBHOOK ? 8 : 7);
    for (const group of groups) {
      expect([group.DeletionPolicy, group.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
      // Kept groups still expire their logs.
      expect(group.Properties.RetentionInDays).toBe(90);
    }
  });

  it('refuses SNAPSHOT, which a log group cannot do', () => {
    expect(() => build({ logRemovalPolicy: RemovalPolicy.SNAPSHOT })).toThrow(/logRemovalPolicy cannot be SNAPSHOT/);
  });

  it('lambdaLogLevel is an enum: the Lambdas log at its level', () => {
    const fns = Object.values(build({ lambdaLogLevel: LambdaLogLevel.DEBUG }).template.findResources('AWS::Lambda::Function') as Record<string, Resource>);
    expect(fns).toHaveLength(6);
    for (const fn of fns) expect(fn.Properties.Environment.Variables.POWERTOOLS_LOG_LEVEL).toBe('DEBUG');
  });
});

describe('the Lambda code', () => {
  let templates: Record<string, { Resources: Record<string, Resource> }>;

  beforeAll(() => {
    // Bundling skipped: the asset of each function is then named by its entry point and bundling options, so equal
    // keys mean one bundle. (test/package/consumer.test.ts bundles for real and compares the bytes with the package's.)
    const app = new App({ context: NO_BUNDLING });
    new WebrunStack(app, 'WebrunSfn', { env: ENVIRONMENT });
    new WebrunStack(app, 'WebrunSfnWebhook', { env: ENVIRONMENT, workflow: { completion: Completion.WEBHOOK } });
    const assembly = app.synth();
    templates = Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template]));
  });

  const codeOf = (stackName: string) => Object.values(templates[stackName].Resources).filter((r) => r.Type === 'AWS::Lambda::Function').map((fn) => fn.Properties);

  it('is one asset in the default stack: every function has the same code (S3Key), and runs its own export of it', () => {
    const fns = codeOf('WebrunSfn');
    expect(fns).toHaveLength(6);
    const keys = new Set(fns.map((fn) => fn.Code.S3Key));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f]{64}\.zip$/);
    expect(fns.map((fn) => fn.Handler).sort()).toEqual(WEBRUN_HANDLERS.filter((h) => h !== 'receiveDoorbell').map((h) => `index.${h}`).sort());
  });

  it('is the same one asset with completion by webhook, the doorbell receiver included', () => {
    const fns = codeOf('WebrunSfnWebhook');
    expect(fns.map((fn) => fn.Handler).sort()).toEqual(WEBRUN_HANDLERS.map((h) => `index.${h}`).sort());
    expect(new Set(fns.map((fn) => fn.Code.S3Key))).toEqual(new Set(codeOf('WebrunSfn').map((fn) => fn.Code.S3Key)));
  });
});

describe('WebrunWorkflow with completion by webhook', () => {
  let stack: Stack;
  let workflow: WebrunWorkflow;
  let template: Template;
  let definition: AslDefinition;
  beforeAll(() => {
    ({ stack, workflow, template } = build({ completion: Completion.WEBHOOK }));
    definition = definitionOf(template);
  });

  it('waits on a task token in "Send task", for the task\'s own time (TimeoutSecondsPath), with its token in the payload', () => {
    const send = definition.States[StateNames.send];
    expect(send.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(send.TimeoutSecondsPath).toBe('$.loop.waitSeconds');
    expect(send.Parameters).toMatchObject({ Payload: { 'executionArn.$': '$$.Execution.Id', 'run.$': '$.run', 'loop.$': '$.loop', 'token.$': '$$.Task.Token' } });
    expect(send.ResultPath).toBe('$.loop');
  });

  it('falls back to polling on States.Timeout only, before anything else is caught; every other error ends the session', () => {
    const send = definition.States[StateNames.send];
    expect(send.Catch).toEqual([
      expect.objectContaining({ ErrorEquals: ['States.Timeout'], Next: StateNames.fallBack }),
      expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: StateNames.terminateAfterFailure }),
    ]);
    const fallBack = definition.States[StateNames.fallBack];
    expect(fallBack.Resource).toBe(placeholderFunctionArn(logicalId(stack, workflow.functions.pollTask)));
    expect(fallBack.Parameters).toEqual({ 'executionArn.$': '$$.Execution.Id', 'run.$': '$.run', 'loop.$': '$.loop', fallback: true });
    expect(fallBack.Next).toBe(StateNames.next);
  });

  it('serves the receiver on a public Function URL (the API rings it from the internet)', () => {
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE', TargetFunctionArn: { 'Fn::GetAtt': [logicalId(stack, workflow.doorbell!.receiver), 'Arn'] } });
    template.hasResourceProperties('AWS::DynamoDB::Table', { KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }], TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } });
  });

  it('lets only the send step and the receiver resume executions, of this state machine only', () => {
    const responses = statements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('states:SendTask')));
    expect(responses).toHaveLength(1);
    expect(actionsOf(responses[0]).sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskSuccess']);
    expect(responses[0].Resource).toEqual({ Ref: logicalId(stack, workflow.stateMachine) });
    const policies = template.findResources('AWS::IAM::Policy');
    const owner = Object.values(policies).find((p) => JSON.stringify(p).includes('states:SendTaskSuccess'))!;
    expect(JSON.stringify(owner.Properties.Roles).match(/Role/g)?.length).toBe(2);
  });

  it('lets the receiver read and update waiting tasks (a rule\'s answer is recorded there), never put them', () => {
    const receiverRole = JSON.stringify([stack.resolve(workflow.doorbell!.receiver.role!.roleName)]);
    const receiverStatements = Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>)
      .filter((p) => JSON.stringify(p.Properties.Roles) === receiverRole)
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
    const dynamo = receiverStatements.flatMap(actionsOf).filter((a) => a.startsWith('dynamodb:')).sort();
    expect(dynamo).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem']);
  });

  it('lets the polling fallback read and retire waiting tasks (an update), never delete or put them', () => {
    const pollRole = JSON.stringify([stack.resolve(workflow.functions.pollTask.role!.roleName)]);
    const dynamo = Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>)
      .filter((p) => JSON.stringify(p.Properties.Roles) === pollRole)
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
      .flatMap(actionsOf).filter((a) => a.startsWith('dynamodb:')).sort();
    expect(dynamo).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
  });

  it('alarms on receiver errors and on fallbacks', () => {
    expect(workflow.doorbell!.receiverErrorsAlarm).toBeDefined();
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'WebhookFallbacks', Namespace: 'WebrunSfn' });
  });

  it('the poll default synthesizes none of it', () => {
    const { template: poll } = build();
    poll.resourceCountIs('AWS::Lambda::Url', 0);
    expect(definitionOf(poll).States[StateNames.fallBack]).toBeUndefined();
  });
});
