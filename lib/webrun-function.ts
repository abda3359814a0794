import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib/core';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { WebrunHandlerName } from '../lambdas/shared/contract';

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
  /** The export of the Lambda bundle (lambdas/index.ts) this function runs: its Lambda handler is `index.<handler>`. */
  readonly handler: WebrunHandlerName;
  readonly description: string;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What a stack deletion (or a replacement) does with the function's log group. @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Asynchronous invocation settings, for functions that EventBridge invokes.
   * @default Lambda's defaults: 2 retries, 6 hours, no dead-letter queue (Step Functions invokes synchronously)
   */
  readonly async?: WebrunFunctionAsyncProps;
}

/**
 * How the Lambda entry point is bundled, wherever that happens: by NodejsFunction when this repo synthesizes from
 * its sources, and by `npm run build` (bin/build.ts) into the package's dist/lambdas. One definition, so the
 * pre-built bundle is the very code NodejsFunction builds (test/package/consumer.test.ts compares them byte for
 * byte). CommonJS, platform node: esbuild's defaults for NodejsFunction's output.
 */
export const LAMBDA_BUNDLING = {
  target: 'node22',
  minify: true,
  sourceMap: true,
  /** Maps point at file and line without carrying the sources: half the size, the same stack traces. */
  sourcesContent: false,
  /** The AWS SDK v3 is left to the Lambda runtime. */
  externalModules: ['@aws-sdk/*'],
} as const;

/**
 * The folder beside lib/ that holds the Lambda code: the TypeScript entry point (lambdas/index.ts) in this repo, the
 * pre-built bundle (dist/lambdas/bundle/index.js) in the installed package.
 */
export const LAMBDAS_DIR = path.join(__dirname, '..', 'lambdas');

/**
 * The one Lambda entry point, which every function deploys (the functions differ by handler, the export they run).
 * All of them bundled alike, it is one asset: synth bundles it once, and a deploy uploads it once.
 */
export const LAMBDA_ENTRY = path.join(LAMBDAS_DIR, 'index.ts');

/** The folder of the pre-built bundle under dist/lambdas, beside the compiled lambdas/shared. */
export const LAMBDA_BUNDLE_FOLDER = 'bundle';

/**
 * Where the Lambda code comes from, decided by what this module is. TypeScript (this repo, under tsx or vitest): the
 * sources are beside it and NodejsFunction bundles them with the local esbuild at synth, as always. Compiled
 * JavaScript (dist/, the installed package): the sources are not shipped, and each Lambda deploys the bundle
 * `npm run build` made, as a plain lambda.Function: the consumer's synth needs neither tsx nor esbuild.
 */
export const LAMBDA_CODE_FROM_SOURCE = path.extname(__filename) === '.ts';

/** The pre-built bundle of the Lambda entry point: a folder holding index.js and index.js.map. */
export const LAMBDA_BUNDLE_DIR = path.join(LAMBDAS_DIR, LAMBDA_BUNDLE_FOLDER);

/**
 * This project's own lock file, so synth from the sources works from any working directory (NodejsFunction
 * otherwise looks for one upwards of the working directory). Only read from the sources, where it always exists.
 */
const OWN_LOCK_FILE = path.join(__dirname, '..', 'package-lock.json');

/**
 * What a WebrunFunction is: a NodejsFunction from the sources, a plain lambda.Function with the pre-built bundle
 * (see LAMBDA_CODE_FROM_SOURCE). The cast joins the two constructors; the constructor below passes each its own
 * props (fromSource or fromBundle), chosen by the same flag.
 */
const FunctionBase = (LAMBDA_CODE_FROM_SOURCE ? NodejsFunction : lambda.Function) as
  new (scope: Construct, id: string, props: NodejsFunctionProps | lambda.FunctionProps) => lambda.Function;

/**
 * Every webrun Lambda is built the same way: Node.js 22 on arm64, its code the one bundle of lambdas/index.ts that
 * they all share (made by esbuild, never Docker; minified with source maps, the AWS SDK v3 left to the runtime), its
 * own export of it as handler, X-Ray tracing, its own log group, and its own role that may write to that log group
 * only (instead of AWSLambdaBasicExecutionRole's `logs:*` on every group).
 */
/** Lambda's application log level for a Powertools log level (DEBUG, INFO, WARN, ERROR); undefined leaves Lambda's INFO. */
function applicationLogLevel(level: string | undefined): lambda.ApplicationLogLevel | undefined {
  const levels: Record<string, lambda.ApplicationLogLevel> = {
    DEBUG: lambda.ApplicationLogLevel.DEBUG,
    INFO: lambda.ApplicationLogLevel.INFO,
    WARN: lambda.ApplicationLogLevel.WARN,
    ERROR: lambda.ApplicationLogLevel.ERROR,
  };
  return level === undefined ? undefined : levels[level];
}

export class WebrunFunction extends FunctionBase {
  constructor(scope: Construct, id: string, props: WebrunFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.description}`,
    });
    logGroup.grantWrite(role);
    const options = {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout,
      tracing: lambda.Tracing.ACTIVE,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // With the JSON format Lambda drops lines under its application log level, INFO unless set: the Powertools
      // level (lambdaLogLevel) is that level too, or DEBUG lines would never arrive.
      applicationLogLevelV2: applicationLogLevel(props.environment?.POWERTOOLS_LOG_LEVEL),
      environment: { NODE_OPTIONS: '--enable-source-maps', POWERTOOLS_SERVICE_NAME: 'webrun-sfn', ...props.environment },
      retryAttempts: props.async?.retryAttempts,
      maxEventAge: props.async?.maxEventAge,
      deadLetterQueue: props.async?.deadLetterQueue,
    } satisfies CommonOptions;
    super(scope, id, LAMBDA_CODE_FROM_SOURCE ? fromSource(props.handler, options) : fromBundle(props.handler, options));

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

/** What both ways of building a WebrunFunction share: everything but the code. */
type CommonOptions = lambda.FunctionOptions & { readonly runtime: lambda.Runtime };

/** NodejsFunction's props: bundle lambdas/index.ts at synth (the same bundle, so the same asset, for every function). */
function fromSource(handler: WebrunHandlerName, options: CommonOptions): NodejsFunctionProps {
  return {
    ...options,
    entry: LAMBDA_ENTRY,
    depsLockFilePath: OWN_LOCK_FILE,
    handler,
    bundling: { ...LAMBDA_BUNDLING, externalModules: [...LAMBDA_BUNDLING.externalModules], forceDockerBundling: false },
  };
}

/** lambda.Function's props: deploy the bundle `npm run build` made, as it is (one asset for every function). */
function fromBundle(handler: WebrunHandlerName, options: CommonOptions): lambda.FunctionProps {
  const index = path.join(LAMBDA_BUNDLE_DIR, 'index.js');
  if (!fs.existsSync(index)) {
    throw new Error(`webrun-sfn: the pre-built Lambda bundle ${index} is missing: this copy of the package was not built (npm run build)`);
  }
  return { ...options, code: lambda.Code.fromAsset(LAMBDA_BUNDLE_DIR), handler: `index.${handler}` };
}
