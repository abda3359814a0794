/**
 * The checked synth in tests: cdk-nag's AwsSolutions plugin and aws-cdk-lib's CloudFormation template validation, as
 * `cdk synth` runs them, and the acknowledgements' reasons. vitest.config.mts turns the template validation off for
 * every other synth (CDK_VALIDATION=false): its engine takes seconds to start, and these synths cover every stack shape.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, CloudFormationValidatePlugin, Validations } from 'aws-cdk-lib/core';
import type { IConstruct } from 'constructs';
import { awsSolutionsChecks } from '../../bin/nag-checks';

type ValidationReport = { pluginReports: Array<{ violations: Array<{ ruleName: string; severity: string; violatingConstructs: Array<{ constructPath: string }> }> }> };

export interface NagSynth {
  /** Each unacknowledged finding: "<severity> <rule> at <construct path>". */
  findings: string[];
  /** The synth's error: cdk-nag fails the synth on an unacknowledged error. */
  error?: Error;
}

/** One instance for every synth: it compiles its WebAssembly engine once, as aws-cdk-lib's own default instance does. */
const templateValidation = new CloudFormationValidatePlugin();

/**
 * Synthesizes `app` (made with its own `outdir`) with the AwsSolutions plugin and the CloudFormation template
 * validation (registered explicitly, it runs whatever CDK_VALIDATION says), and reads their validation report.
 */
export function synthWithNag(app: App): NagSynth {
  Validations.of(app).addPlugins(awsSolutionsChecks(app), templateValidation);
  let error: Error | undefined;
  try {
    app.synth();
  } catch (err) {
    error = err as Error;
  }
  const report = JSON.parse(fs.readFileSync(path.join(app.outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
  const findings = report.pluginReports.flatMap((r) => r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.severity} ${v.ruleName} at ${c.constructPath}`)));
  return { findings, error };
}

/** The same, for stacks `addStack` adds to a fresh app with `context`, synthesized into a temporary folder it removes. */
export function nagStacks(context: Record<string, unknown>, addStack: (app: App) => void): NagSynth {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'webrun-nag-'));
  try {
    const app = new App({ context, outdir });
    addStack(app);
    return synthWithNag(app);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/** The reason of every finding acknowledged in `scope`'s tree. */
export function acknowledgementReasons(scope: IConstruct): string[] {
  return scope.node
    .findAll()
    .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
    .flatMap((m) => Object.values(m.data as Record<string, string>));
}
