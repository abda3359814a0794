/**
 * The log level of the workflow Lambdas' structured (Powertools) logs, as an enum so that the construct's props
 * hold no string-literal union. Pure TypeScript, no aws-cdk-lib: lib/config.ts maps the config file's
 * `lambdaLogLevel` to it.
 */
export enum LambdaLogLevel {
  /** Every step's details, for troubleshooting (more log volume; payloads are never logged). */
  DEBUG = 'DEBUG',
  /** What each step did (the default). */
  INFO = 'INFO',
  /** Retries, refusals and other things worth a look. */
  WARN = 'WARN',
  /** Failures only. */
  ERROR = 'ERROR',
}
