/**
 * cdk-nag's AwsSolutions checks, for the synths that run them: `cdk synth` (bin/app.ts) and the checked synth in
 * tests (test/helpers/nag.ts).
 *
 * cdk-nag is loaded by `require` and typed here by the one constructor this project calls, with aws-cdk-lib's own
 * plugin interface. Its declarations import aws-cdk-lib's root module, so importing them made every type check
 * parse all of aws-cdk-lib's service modules (4,573 files and 1.26 million lines, against 3,038 and 0.68 million:
 * this project imports aws-cdk-lib by the submodules it uses), about 1.7 s of CPU and 0.9 s of a `tsc --noEmit`
 * on 2 cores. The checked synth's tests fail if cdk-nag stops fitting this type.
 */
import type { IPolicyValidationPlugin } from 'aws-cdk-lib/core';
import type { Construct } from 'constructs';

interface CdkNag {
  /** The AWS Solutions rules pack, as a policy validation plugin of the app `scope` belongs to. */
  AwsSolutionsChecks: new (scope: Construct) => IPolicyValidationPlugin;
}

/** The AWS Solutions checks, to add to an app with `Validations.of(app).addPlugins(...)`. */
export function awsSolutionsChecks(scope: Construct): IPolicyValidationPlugin {
  const { AwsSolutionsChecks } = require('cdk-nag') as CdkNag;
  return new AwsSolutionsChecks(scope);
}
