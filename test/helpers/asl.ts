/**
 * Turns the `DefinitionString` of a synthesized template into plain ASL for assertions: CloudFormation tokens
 * become readable placeholders (`Ref AWS::Partition` → `aws`, `Fn::GetAtt [Fn, Arn]` → a Lambda ARN ending in
 * the logical id), so a Task's `Resource` tells which function it invokes.
 */
import type { Template } from 'aws-cdk-lib/assertions';

export interface AslCatcher {
  ErrorEquals: string[];
  Next: string;
  ResultPath?: string | null;
}

export interface AslRetrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
}

export interface AslState {
  Type: string;
  Resource?: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: Array<{ Next: string }>;
  Retry?: AslRetrier[];
  Catch?: AslCatcher[];
  [key: string]: unknown;
}

export interface AslDefinition {
  StartAt: string;
  TimeoutSeconds?: number;
  States: Record<string, AslState>;
  [key: string]: unknown;
}

const PSEUDO: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '123456789012',
  'AWS::URLSuffix': 'amazonaws.com',
};

/** The placeholder a `Fn::GetAtt [logicalId, Arn]` of a Lambda becomes. */
export const placeholderFunctionArn = (logicalId: string) => `arn:aws:lambda:us-east-1:123456789012:function:${logicalId}`;

function placeholder(token: unknown): string {
  if (typeof token === 'string') return token;
  const node = token as Record<string, unknown>;
  if (node['Fn::Join']) {
    const [sep, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(placeholder).join(sep);
  }
  if (typeof node.Ref === 'string') return PSEUDO[node.Ref] ?? `<Ref:${node.Ref}>`;
  if (node['Fn::GetAtt']) {
    const [logicalId, attribute] = node['Fn::GetAtt'] as [string, string];
    return attribute === 'Arn' ? placeholderFunctionArn(logicalId) : `<GetAtt:${logicalId}.${attribute}>`;
  }
  throw new Error(`test/helpers/asl: no placeholder for ${JSON.stringify(token)}`);
}

/** The definition of the template's only state machine, as parsed ASL. */
export function definitionOf(template: Template): AslDefinition {
  const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  return JSON.parse(placeholder(machines[0].Properties.DefinitionString)) as AslDefinition;
}

/** Every state a state can go to next, by its Next, Choices, Default and Catch. */
export function successors(state: AslState): string[] {
  return [state.Next, state.Default, ...(state.Choices ?? []).map((c) => c.Next), ...(state.Catch ?? []).map((c) => c.Next)].filter(
    (n): n is string => typeof n === 'string',
  );
}

/** The states reachable from StartAt without passing through `avoid`. */
export function reachable(definition: AslDefinition, avoid: ReadonlySet<string> = new Set()): Set<string> {
  const seen = new Set<string>();
  const stack = avoid.has(definition.StartAt) ? [] : [definition.StartAt];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const state = definition.States[name];
    if (!state) throw new Error(`state "${name}" is referenced but not defined`);
    for (const next of successors(state)) if (!avoid.has(next)) stack.push(next);
  }
  return seen;
}
