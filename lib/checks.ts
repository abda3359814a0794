/**
 * Checks the config file (lib/config.ts) and the constructs share, so a prop fails `cdk synth` the same way whether
 * it came from webrun.config.json or from another app's code. Pure TypeScript: no aws-cdk-lib, no schema library.
 */

/** What an SNS e-mail subscription takes, roughly: anything else fails the deploy. */
export const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
