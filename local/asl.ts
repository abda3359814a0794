/**
 * Gets the state machine definition that `cdk deploy` ships, as plain ASL, straight from the construct
 * in-process (no cdk.out, no bundling), and tells which Lambda handler each Task state invokes, with the settings
 * and timeouts the deployed functions get.
 */
import './polyfill';
import { App, Stack } from 'aws-cdk-lib';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { StateMachine } from 'aws-local-stepfunctions';
import type { HandlerName } from '../lambdas/shared/handlers';
import { settingsFromEnv, type WorkflowSettings } from '../lambdas/shared/settings';
import { WebrunWorkflow, type WebrunWorkflowProps } from '../lib/webrun-workflow';

export const PLACEHOLDER = { account: '123456789012', region: 'us-east-1', partition: 'aws' } as const;

export interface LocalWorkflow {
  /** The synthesized definition, tokens resolved to placeholders. */
  definition: Record<string, unknown> & { States: Record<string, AslState> };
  /** Task state name → the handler its Lambda runs. */
  taskHandlers: Record<string, HandlerName>;
  /** The settings the deployed Lambdas get through their environment. */
  settings: WorkflowSettings;
  /** Each handler's Lambda timeout, in seconds: its invocations get that much time, as deployed. */
  timeouts: Record<HandlerName, number>;
  /** Task states that wait on a task token (completion by webhook): their Lambda answers, the token resumes them. */
  waitsForToken: ReadonlySet<string>;
  /** The executor for this definition, built (and its definition validated) once. */
  machine: StateMachine;
}

export interface AslState {
  Type: string;
  Resource?: string;
  Seconds?: number;
  Retry?: Array<{ ErrorEquals: string[]; IntervalSeconds?: number }>;
  [key: string]: unknown;
}

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

/**
 * The definition as the local executor gets it. One difference, for states that wait on a task token:
 * aws-local-stepfunctions resolves `TimeoutSecondsPath` against the state's payload instead of its input (Step
 * Functions uses the input), so the runner enforces that timeout itself, from the same path, scaled like every wait.
 */
function executable(definition: LocalWorkflow['definition'], waitsForToken: ReadonlySet<string>): LocalWorkflow['definition'] {
  const copy = structuredClone(definition);
  for (const name of waitsForToken) delete copy.States[name].TimeoutSecondsPath;
  return copy;
}

export function functionArn(logicalId: string): string {
  return `arn:${PLACEHOLDER.partition}:lambda:${PLACEHOLDER.region}:${PLACEHOLDER.account}:function:${logicalId}`;
}

/** Builds the workflow construct in a throwaway app and returns its definition as runnable ASL. */
export function synthesizeLocalWorkflow(props: WebrunWorkflowProps = {}): LocalWorkflow {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'WebrunLocal', { env: { account: PLACEHOLDER.account, region: PLACEHOLDER.region } });
  const workflow = new WebrunWorkflow(stack, 'Workflow', props);
  const cfnStateMachine = workflow.stateMachine.node.defaultChild as CfnStateMachine;
  const text = resolveIntrinsics(stack.resolve(cfnStateMachine.definitionString));
  if (typeof text !== 'string') throw new Error('The state machine definition did not resolve to a string');
  const definition = JSON.parse(text) as LocalWorkflow['definition'];

  const byArn = new Map<string, HandlerName>();
  const timeouts = {} as Record<HandlerName, number>;
  let env: Record<string, string> = {};
  for (const [name, fn] of Object.entries(workflow.functions) as Array<[HandlerName, WebrunWorkflow['functions'][HandlerName]]>) {
    const cfnFunction = fn.node.defaultChild as CfnFunction;
    byArn.set(functionArn(stack.getLogicalId(cfnFunction)), name);
    timeouts[name] = Number(cfnFunction.timeout ?? 3);
    const resolvedEnv = stack.resolve(cfnFunction.environment) as { variables?: Record<string, unknown> } | undefined;
    env = Object.fromEntries(Object.entries(resolvedEnv?.variables ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  const taskHandlers: Record<string, HandlerName> = {};
  const waitsForToken = new Set<string>();
  for (const [stateName, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    // payloadResponseOnly names the function as the Resource; the lambda:invoke integrations name it in Parameters.
    const viaIntegration = state.Resource?.startsWith(`arn:${PLACEHOLDER.partition}:states:::lambda:invoke`);
    const arn = viaIntegration ? (state.Parameters as { FunctionName?: string } | undefined)?.FunctionName : state.Resource;
    const handler = arn ? byArn.get(arn) : undefined;
    if (!handler) throw new Error(`Task state "${stateName}" invokes ${arn ?? state.Resource}, which is not one of the workflow's Lambdas`);
    taskHandlers[stateName] = handler;
    if (state.Resource?.endsWith('.waitForTaskToken')) waitsForToken.add(stateName);
  }
  // Validated here, once: each run reuses the executor instead of checking the same definition again.
  const machine = new StateMachine(executable(definition, waitsForToken) as never, { validationOptions: { checkArn: false } });
  return { definition, taskHandlers, settings: settingsFromEnv(env), timeouts, waitsForToken, machine };
}
