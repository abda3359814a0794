#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { WebrunStack } from '../lib/webrun-stack';

const app = new App();
new WebrunStack(app, 'WebrunSfn', {
  description: 'webrun-sfn: multi-task webrun browser-agent workflows on Step Functions',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
