/**
 * The batch state machine that `cdk deploy` ships, as plain ASL, straight from the construct in-process (no
 * cdk.out, no bundling): what `npm run definitions` writes to local/built/batch.json for the local batch.
 * Loads aws-cdk-lib: the local batch itself reads the built file instead (local/batch-workflow.ts).
 */
import { App, Stack } from 'aws-cdk-lib/core';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { WebrunBatch, type WebrunBatchProps } from '../lib/webrun-batch';
import { WebrunWorkflow } from '../lib/webrun-workflow';
import { resolveIntrinsics } from './asl';
import type { BatchDefinition } from './batch-workflow';
import { PLACEHOLDER } from './workflow';

/** The batch definition the construct synthesizes with these props (beside a default workflow), tokens resolved to placeholders. */
export function describeBatch(props: Omit<WebrunBatchProps, 'workflow'> = {}): BatchDefinition {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'WebrunLocal', { env: { account: PLACEHOLDER.account, region: PLACEHOLDER.region } });
  const workflow = new WebrunWorkflow(stack, 'Workflow');
  const batch = new WebrunBatch(stack, 'Batch', { ...props, workflow });
  const text = resolveIntrinsics(stack.resolve((batch.stateMachine.node.defaultChild as CfnStateMachine).definitionString));
  if (typeof text !== 'string') throw new Error('The batch state machine definition did not resolve to a string');
  return JSON.parse(text) as BatchDefinition;
}
