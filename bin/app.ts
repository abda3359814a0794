#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib/core';
import * as path from 'node:path';
import { CONFIG_CONTEXT_KEY, ConfigFileError, loadConfig } from '../lib/config';
import { stackPropsFromConfig, WebrunStack } from '../lib/webrun-stack';
import { awsSolutionsChecks } from './nag-checks';

const app = new App();
// One validated config file: webrun.config.json at the repo root, or -c webrun:config=<path>.
let config;
try {
  config = loadConfig({ path: app.node.tryGetContext(CONFIG_CONTEXT_KEY), defaultDir: path.join(__dirname, '..') });
} catch (err) {
  if (!(err instanceof ConfigFileError)) throw err;
  process.stderr.write(`webrun-sfn: ${err.message}\n`);
  process.exit(1);
}
new WebrunStack(app, config.stackName, {
  ...stackPropsFromConfig(config),
  description: 'webrun-sfn: multi-task webrun browser-agent workflows on Step Functions',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// Security baseline: the AWS Solutions checks run on every synth, and any finding not acknowledged (with its
// reason, next to the construct it concerns) fails it.
Validations.of(app).addPlugins(awsSolutionsChecks(app));
