/**
 * Every stack shape the project synthesizes, through the checks `cdk synth` runs: cdk-nag's AwsSolutions rules
 * (each finding acknowledged, with a reason) and aws-cdk-lib's CloudFormation template validation. They live in
 * this one file, in one synth, so that one test worker, once, loads cdk-nag and starts the validation engine (a
 * WebAssembly engine: 2 to 3.5 s to start in a test worker on this 2-core machine, 3 to 6 s of CPU across its
 * threads, and started again for every synth whose resource types it has not seen).
 */
import * as path from 'node:path';
import { CfnResource, Stack } from 'aws-cdk-lib/core';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../lib/config';
import { stackPropsFromConfig, WebrunStack } from '../../lib/webrun-stack';
import { Completion, WebrunWorkflow } from '../../lib/webrun-workflow';
import { acknowledgementReasons, nagStacks } from '../helpers/nag';

const ROOT = path.join(__dirname, '..', '..');
/** Skip esbuild: the checks read the templates, not the bundles. */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] as string[] };
const ENVIRONMENT = { account: '123456789012', region: 'us-east-1' };
const synthWithNag = (addStack: Parameters<typeof nagStacks>[1]) => nagStacks(NO_BUNDLING, addStack);

/** Each acknowledgement carries a real reason (at least a sentence), not a placeholder. */
function expectReasons(reasons: string[], atLeast: number): void {
  expect(reasons.length).toBeGreaterThanOrEqual(atLeast);
  for (const reason of reasons) expect(reason.length).toBeGreaterThan(60);
}

/** Every shape in one app, synthesized once: the validation engine starts once for all their resource types. */
let findings: string[];
let error: Error | undefined;
let stacks: { deployable: WebrunStack; full: WebrunStack };
beforeAll(() => {
  const config = loadConfig({ path: 'examples/config/full.json', cwd: ROOT });
  ({ findings, error } = synthWithNag((app) => {
    stacks = {
      deployable: new WebrunStack(app, 'WebrunSfn', { env: ENVIRONMENT }),
      full: new WebrunStack(app, config.stackName, { ...stackPropsFromConfig(config), env: ENVIRONMENT }),
    };
    const bare = new Stack(app, 'MyWebrunWorkflows', { env: ENVIRONMENT });
    new WebrunWorkflow(bare, 'Workflow');
    new WebrunWorkflow(bare, 'Webhook', { completion: Completion.WEBHOOK, observability: { alarmEmail: 'ops@example.com', costAlarmUsd: 5 } });
  }));
}, 120_000);

/** The findings at constructs of one stack. */
const findingsIn = (stackName: string) => findings.filter((f) => f.includes(` at ${stackName}/`));

describe('cdk-nag AwsSolutions and CloudFormation validation report nothing unacknowledged', () => {
  it('in any stack: the synth passes', () => {
    expect(findings).toEqual([]);
    expect(error).toBeUndefined();
  });

  it('on the deployable stack', () => {
    expect(findingsIn('WebrunSfn')).toEqual([]);
    expectReasons(acknowledgementReasons(stacks.deployable), 1);
  });

  // The webhook's resources (doorbell receiver, waiting-task table) are checked here; the stack around them above.
  it('on bare WebrunWorkflows in a plain Stack, as another app uses them: by poll, and by webhook with alarms', () => {
    expect(findingsIn('MyWebrunWorkflows')).toEqual([]);
  });

  it('on the stack of examples/config/full.json: batches, schedules, triggers, alarms, questions, an existing secret', () => {
    expect(findingsIn(stacks.full.stackName)).toEqual([]);
    expectReasons(acknowledgementReasons(stacks.full.batch!), 5);
  });
});

describe('the checks can fail', () => {
  it('cdk-nag reports a finding that nobody acknowledged, and fails the synth', () => {
    const { findings, error } = synthWithNag((app) => {
      const stack = new Stack(app, 'Control', { env: ENVIRONMENT });
      new sqs.Queue(stack, 'PlainQueue');
    });
    expect(findings).toContain('error AwsSolutions-SQS4 at Control/PlainQueue/Resource');
    expect(error?.message).toContain('AwsSolutions-SQS4');
  });

  it('the template validation reports a template CloudFormation would refuse', () => {
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => undefined); // aws-cdk-lib prints the report too
    try {
      const { findings } = synthWithNag((app) => {
        const stack = new Stack(app, 'Control', { env: ENVIRONMENT });
        new CfnResource(stack, 'MisspelledQueue', { type: 'AWS::SQS::Queue', properties: { VisibilityTimeOut: 30 } });
      });
      expect(findings).toEqual(['warning F3002 at Control/MisspelledQueue']);
    } finally {
      quiet.mockRestore();
    }
  });
});
