/**
 * Binds the workflow handlers to the Lambda environment, with Powertools used as designed: the API key from Secrets
 * Manager through Parameters (the function gets the secret's ARN, never its value; cached 5 minutes), configuration
 * from environment variables read once, and every entry point wrapped by Middy in Tracer (X-Ray segments for the
 * handler, the AWS SDK clients and each fetch to the webrun API), Logger (JSON, the Lambda context: request id and
 * cold start, plus the invocation's correlation keys) and Metrics (EMF, with a ColdStart metric, flushed at the end
 * of every invocation).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SNSClient } from '@aws-sdk/client-sns';
import { awsQuestionNotifier } from './questions';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { DEFAULT_BASE_URL, ENV, METRICS_NAMESPACE, METRICS_SERVICE, METRICS_STACK_DIMENSION, WorkflowMetricNames } from './contract';
import { ConfigError } from './errors';
import { makeHandlers, type HandlerDeps, type HandlerName, type InvocationContext, type WorkflowHandlers } from './handlers';
import type { WorkflowMetrics } from './metrics';
import { s3ResultStore } from './result-store';
import { secretApiKeyReader } from './secret';
import { dynamoSessionRecords } from './session-records';
import { settingsFromEnv, sleep } from './settings';
import { secretsManagerCredentials } from './site-credentials';
import { sfnTaskTokens } from './task-tokens';
import { dynamoWaitingTasks } from './waiting-tasks';
import { WebrunClient } from './webrun-client';

export const logger = new Logger({ serviceName: METRICS_SERVICE });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE });
export const tracer = new Tracer({ serviceName: METRICS_SERVICE });

/** Powertools metrics behind the handlers' `WorkflowMetrics` dependency. */
export function powertoolsMetrics(target: Metrics, env: NodeJS.ProcessEnv = process.env): WorkflowMetrics {
  const stack = env[ENV.stackName];
  if (stack) target.setDefaultDimensions({ [METRICS_STACK_DIMENSION]: stack });
  return {
    add: (name, value) => target.addMetric(name, name === WorkflowMetricNames.taskDuration ? MetricUnit.Milliseconds : MetricUnit.Count, value),
  };
}

/** Handler dependencies for a Lambda, from its environment. Configuration errors surface on first use. */
export function lambdaDeps(env: NodeJS.ProcessEnv = process.env): HandlerDeps {
  const secretArn = env[ENV.secretArn];
  const baseUrl = env[ENV.baseUrl] || DEFAULT_BASE_URL;
  const secrets = tracer.captureAWSv3Client(new SecretsManagerClient({}));
  const readKey = secretArn ? secretApiKeyReader({ secretId: secretArn, provider: new SecretsProvider({ awsSdkV3Client: secrets }) }) : undefined;
  const settings = settingsFromEnv(env);
  return {
    client: async (options = {}) => {
      if (!readKey) throw new ConfigError(`Environment variable ${ENV.secretArn} is not set: the function does not know which secret holds the webrun API key.`);
      return new WebrunClient({ baseUrl, apiKey: await readKey(), refreshApiKey: () => readKey({ fresh: true }), ...options });
    },
    siteCredentials: secretsManagerCredentials(secrets, secretArn),
    pollPlan: settings.pollPlan,
    results: s3ResultStore(tracer.captureAWSv3Client(new S3Client({})), env[ENV.resultBucket]),
    placement: { inlineResultBytes: settings.inlineResultBytes },
    sessions: dynamoSessionRecords({ client: tracer.captureAWSv3Client(new DynamoDBClient({})), tableName: env[ENV.sessionTable], ttlSeconds: Number(env[ENV.sessionTtlSeconds]) || 8 * 86_400 }),
    metrics: powertoolsMetrics(metrics, env),
    questions: awsQuestionNotifier(
      tracer.captureAWSv3Client(new EventBridgeClient({})),
      env[ENV.questionTopicArn] ? tracer.captureAWSv3Client(new SNSClient({})) : undefined,
      env[ENV.questionTopicArn],
    ),
    // Completion by webhook: set up when the construct gave this function the waiting-task table.
    ...(env[ENV.waitingTable]
      ? {
          doorbell: {
            waiting: dynamoWaitingTasks({ client: tracer.captureAWSv3Client(new DynamoDBClient({})), tableName: env[ENV.waitingTable] }),
            taskTokens: sfnTaskTokens(tracer.captureAWSv3Client(new SFNClient({}))),
            receiverUrl: env[ENV.receiverUrl] ?? '',
          },
        }
      : {}),
    sleep,
    log: {
      info: (message, fields) => logger.info(message, fields ?? {}),
      warn: (message, fields) => logger.warn(message, fields ?? {}),
      error: (message, fields) => logger.error(message, fields ?? {}),
    },
  };
}

/**
 * The correlation keys of one invocation, from the state's payload: never the payload itself (task details and
 * results may be private). `executionArn` appears when the state machine passes `$$.Execution.Id` as it.
 */
export function correlationKeys(event: unknown): Record<string, string | number> {
  const keys: Record<string, string | number> = {};
  if (event === null || typeof event !== 'object') return keys;
  const e = event as Record<string, unknown>;
  if (typeof e.executionArn === 'string' && e.executionArn.startsWith('arn:')) keys.executionArn = e.executionArn;
  const run = (e.run ?? {}) as Record<string, unknown>;
  const loop = (e.loop ?? {}) as Record<string, unknown>;
  const pending = (loop.pending ?? {}) as Record<string, unknown>;
  if (typeof run.sessionId === 'string' && run.sessionId !== '') keys.sessionId = run.sessionId;
  if (typeof loop.index === 'number') keys.taskIndex = loop.index;
  if (typeof pending.taskId === 'string' && pending.taskId !== '') keys.taskId = pending.taskId;
  return keys;
}

export interface Powertools {
  logger: Logger;
  metrics: Metrics;
  tracer: Tracer;
}

/**
 * A Lambda entry point around `fn`: Tracer around the invocation (never capturing the response: results may be
 * private), the Lambda context and the invocation's correlation keys on every log line (removed after it), the
 * metrics flushed at its end with a ColdStart metric, and a warning naming any error it throws.
 */
export function instrument<R>(step: string, fn: (event: unknown, ctx: InvocationContext) => Promise<R>, tools: Powertools = { logger, metrics, tracer }) {
  const { logger: log } = tools;
  return middy(async (event: unknown, context: Context): Promise<R> => fn(event, invocationContext(context)))
    .use(captureLambdaHandler(tools.tracer, { captureResponse: false }))
    .use(injectLambdaContext(log, { resetKeys: true }))
    .use(logMetrics(tools.metrics, { captureColdStartMetric: true }))
    .use({
      before: (request) => {
        log.appendKeys({ step, ...correlationKeys(request.event) });
      },
      onError: (request) => {
        // Error names and messages are written to be safe to log: they never carry the API key.
        const err = request.error as Error | null;
        log.warn('step failed', { errorName: err?.name, errorMessage: err?.message });
      },
    });
}

/** What a handler needs of Lambda's context: the time it has left. */
export function invocationContext(context: Pick<Context, 'getRemainingTimeInMillis'> | undefined): InvocationContext {
  return context ? { remainingMs: () => context.getRemainingTimeInMillis() } : {};
}

let handlers: WorkflowHandlers | undefined;
/** One set of handlers per warm container, so the API key cache survives between invocations. */
export function lambdaHandlers(): WorkflowHandlers {
  handlers ??= makeHandlers(lambdaDeps());
  return handlers;
}

/** The Lambda entry point of one workflow step. */
export function lambdaHandler(step: HandlerName) {
  return instrument<unknown>(step, (event, ctx) => (lambdaHandlers()[step] as (e: unknown, c: InvocationContext) => Promise<unknown>)(event, ctx));
}
