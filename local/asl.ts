/**
 * Gets the state machine definition that `cdk deploy` ships, as plain ASL, straight from the construct
 * in-process (no cdk.out, no bundling), and tells which Lambda handler each Task state invokes, with the settings
 * and timeouts the deployed functions get.
 */
import { App, Stack } from 'aws-cdk-lib/core';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { HandlerName } from '../lambdas/shared/handlers';
import { settingsFromEnv } from '../lambdas/shared/settings';
import { WebrunWorkflow, type WebrunWorkflowProps } from '../lib/webrun-workflow';
import { localWorkflow, PLACEHOLDER, type AslState, type LocalWorkflow, type WorkflowDescription } from './workflow';

export { PLACEHOLDER, type AslState, type LocalWorkflow };

type Cfn = unknown;

/** Resolves the CloudFormation intrinsics a definition string contains (Join, Ref, GetAtt ...Arn). */
export function resolveIntrinsics(value: Cfn): Cfn {
  if (Array.isArray(value)) return value.map(resolveIntrinsics);
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, Cfn>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    const [key] = keys;
    const arg = obj[key];
    if (key === 'Fn::Join') {
      const [sep, parts] = arg as [string, Cfn[]];
      return parts.map((p) => String(resolveIntrinsics(p))).join(sep);
    }
    if (key === 'Ref') {
      const pseudo: Record<string, string> = {
        'AWS::Partition': PLACEHOLDER.partition,
        'AWS::Region': PLACEHOLDER.region,
        'AWS::AccountId': PLACEHOLDER.account,
        'AWS::URLSuffix': 'amazonaws.com',
      };
      const ref = arg as string;
      return pseudo[ref] ?? `ref-${ref}`;
    }
    if (key === 'Fn::GetAtt') {
      const [logicalId, attr] = arg as [string, string];
      if (attr !== 'Arn') throw new Error(`Cannot resolve Fn::GetAtt ${logicalId}.${attr} locally`);
      return functionArn(logicalId);
    }
    if (key.startsWith('Fn::')) throw new Error(`Cannot resolve ${key} locally`);
  }
  return Object.fromEntries(keys.map((k) => [k, resolveIntrinsics(obj[k])]));
}

export function functionArn(logicalId: string): string {
  return `arn:${PLACEHOLDER.partition}:lambda:${PLACEHOLDER.region}:${PLACEHOLDER.account}:function:${logicalId}`;
}

/** Builds the workflow construct in a throwaway app and returns its definition as runnable ASL. */
export function synthesizeLocalWorkflow(props: WebrunWorkflowProps = {}): LocalWorkflow {
  return localWorkflow(describeWorkflow(props), true);
}

/** What the construct synthesizes for these props, as the local runner needs it. */
export function describeWorkflow(props: WebrunWorkflowProps = {}): WorkflowDescription {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'WebrunLocal', { env: { account: PLACEHOLDER.account, region: PLACEHOLDER.region } });
  const workflow = new WebrunWorkflow(stack, 'Workflow', props);
  const cfnStateMachine = workflow.stateMachine.node.defaultChild as CfnStateMachine;
  const text = resolveIntrinsics(stack.resolve(cfnStateMachine.definitionString));
  if (typeof text !== 'string') throw new Error('The state machine definition did not resolve to a string');
  const definition = JSON.parse(text) as LocalWorkflow['definition'];

  const byArn = new Map<string, HandlerName>();
  const timeouts = {} as Record<HandlerName, number>;
  const memoryMb = {} as Record<HandlerName, number>;
  let env: Record<string, string> = {};
  for (const [name, fn] of Object.entries(workflow.functions) as Array<[HandlerName, WebrunWorkflow['functions'][HandlerName]]>) {
    const cfnFunction = fn.node.defaultChild as CfnFunction;
    byArn.set(functionArn(stack.getLogicalId(cfnFunction)), name);
    timeouts[name] = Number(cfnFunction.timeout ?? 3);
    memoryMb[name] = Number(cfnFunction.memorySize ?? 128);
    const resolvedEnv = stack.resolve(cfnFunction.environment) as { variables?: Record<string, unknown> } | undefined;
    env = Object.fromEntries(Object.entries(resolvedEnv?.variables ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  const taskHandlers: Record<string, HandlerName> = {};
  const waitsForToken: Record<string, string | undefined> = {};
  for (const [stateName, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    // payloadResponseOnly names the function as the Resource; the lambda:invoke integrations name it in Parameters.
    const viaIntegration = state.Resource?.startsWith(`arn:${PLACEHOLDER.partition}:states:::lambda:invoke`);
    const arn = viaIntegration ? (state.Parameters as { FunctionName?: string } | undefined)?.FunctionName : state.Resource;
    const handler = arn ? byArn.get(arn) : undefined;
    if (!handler) throw new Error(`Task state "${stateName}" invokes ${arn ?? state.Resource}, which is not one of the workflow's Lambdas`);
    taskHandlers[stateName] = handler;
    if (state.Resource?.endsWith('.waitForTaskToken')) waitsForToken[stateName] = state.TimeoutSecondsPath as string | undefined;
  }
  return { definition, taskHandlers, settings: settingsFromEnv(env), timeouts, memoryMb, waitsForToken };
}
