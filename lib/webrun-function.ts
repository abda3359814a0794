import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/** How an asynchronously invoked function (EventBridge) retries, and where the events it gave up on go. */
export interface WebrunFunctionAsyncProps {
  /** Retries after the function throws: 0 to 2. */
  readonly retryAttempts: number;
  /** How long Lambda keeps an event it could not run yet: 1 minute to 6 hours. */
  readonly maxEventAge: Duration;
  /** Receives the events whose retries were exhausted. */
  readonly deadLetterQueue: sqs.IQueue;
}

export interface WebrunFunctionProps {
  /** File name under lambdas/, without extension (e.g. `start-session`). */
  readonly entryName: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Asynchronous invocation settings, for functions that EventBridge invokes.
   * @default Lambda's defaults: 2 retries, 6 hours, no dead-letter queue (Step Functions invokes synchronously)
   */
  readonly async?: WebrunFunctionAsyncProps;
}

/**
 * Every webrun Lambda is built the same way: Node.js 22 on arm64, bundled by the local esbuild (never Docker),
 * minified with source maps, the AWS SDK v3 left to the runtime, X-Ray tracing, its own log group, and its own
 * role that may write to that log group only (instead of AWSLambdaBasicExecutionRole's `logs:*` on every group).
 */
/**
 * This project's own lock file, so synth works from any working directory; when the construct is installed as a
 * dependency there is none here and CDK finds the consuming app's lock file as usual.
 */
const OWN_LOCK_FILE = path.join(__dirname, '..', 'package-lock.json');

export class WebrunFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: WebrunFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.description}`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      entry: path.join(__dirname, '..', 'lambdas', `${props.entryName}.ts`),
      depsLockFilePath: fs.existsSync(OWN_LOCK_FILE) ? OWN_LOCK_FILE : undefined,
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout,
      tracing: lambda.Tracing.ACTIVE,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: { NODE_OPTIONS: '--enable-source-maps', POWERTOOLS_SERVICE_NAME: 'webrun-sfn', ...props.environment },
      retryAttempts: props.async?.retryAttempts,
      maxEventAge: props.async?.maxEventAge,
      deadLetterQueue: props.async?.deadLetterQueue,
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        target: 'node22',
        externalModules: ['@aws-sdk/*'],
      },
    });

    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is a deliberate pin, not drift: it is in AWS standard support until 2027 and matches the esbuild target ' +
        '(node22) the bundles are built and tested for. Moving to a newer runtime is a reviewed change of both together.',
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only the statement CDK adds for active X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) uses "*": ' +
        'X-Ray has no resource-level permissions. Every other grant on this role names its resource ' +
        '(test/lib/webrun-workflow.test.ts checks that no other action gets "*").',
    });
  }
}
