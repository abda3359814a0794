#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { WebrunStack } from '../lib/webrun-stack';

const app = new App();
new WebrunStack(app, 'WebrunSfn', {
  description: 'webrun-sfn: multi-task webrun browser-agent workflows on Step Functions',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// Security baseline: the AWS Solutions checks run on every synth, and any finding not acknowledged (with its
// reason, next to the construct it concerns) fails it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
