/**
 * Binds the workflow handlers to the Lambda environment: the API key from Secrets Manager (the function gets
 * the secret's ARN, never its value), configuration from environment variables read once, Powertools logs (JSON,
 * with correlation keys per invocation: executionArn when the state passes it, sessionId, taskIndex, taskId) and
 * Powertools metrics (EMF), flushed at the end of every invocation.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { DEFAULT_BASE_URL, ENV, METRICS_NAMESPACE, METRICS_SERVICE, METRICS_STACK_DIMENSION, WorkflowMetricNames } from './contract';
import { ConfigError } from './errors';
import { makeHandlers, type HandlerDeps, type InvocationContext, type WorkflowHandlers } from './handlers';
import type { WorkflowMetrics } from './metrics';
import { s3ResultStore } from './result-store';
import { secretApiKeyReader } from './secret';
import { dynamoSessionRecords } from './session-records';
import { settingsFromEnv, sleep } from './settings';
import { secretsManagerCredentials } from './site-credentials';
import { WebrunClient } from './webrun-client';

export const logger = new Logger({ serviceName: 'webrun-sfn' });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE });

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
  const secrets = new SecretsManagerClient({});
  const readKey = secretArn ? secretApiKeyReader({ secretId: secretArn, client: secrets }) : undefined;
  const settings = settingsFromEnv(env);
  return {
    client: async (options = {}) => {
      if (!readKey) throw new ConfigError(`Environment variable ${ENV.secretArn} is not set: the function does not know which secret holds the webrun API key.`);
      return new WebrunClient({ baseUrl, apiKey: await readKey(), ...options });
    },
    siteCredentials: secretsManagerCredentials(secrets, secretArn),
    pollPlan: settings.pollPlan,
    results: s3ResultStore(new S3Client({}), env[ENV.resultBucket]),
    placement: { inlineResultBytes: settings.inlineResultBytes },
    sessions: dynamoSessionRecords({ client: new DynamoDBClient({}), tableName: env[ENV.sessionTable], ttlSeconds: Number(env[ENV.sessionTtlSeconds]) || 8 * 86_400 }),
    metrics: powertoolsMetrics(metrics, env),
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

/** Wraps each handler: correlation keys on every log line of the invocation, metrics flushed at its end. */
export function instrumentHandlers(inner: WorkflowHandlers, log: Logger = logger, target: Metrics = metrics): WorkflowHandlers {
  const wrap = <R>(step: string, fn: (event: unknown, ctx?: InvocationContext) => Promise<R>) => async (event: unknown, ctx?: InvocationContext): Promise<R> => {
    const keys = { step, ...correlationKeys(event) };
    log.appendKeys(keys);
    try {
      return await fn(event, ctx);
    } catch (err) {
      // Error names and messages are written to be safe to log: they never carry the API key.
      log.warn('step failed', { errorName: (err as Error)?.name, errorMessage: (err as Error)?.message });
      throw err;
    } finally {
      if (target.hasStoredMetrics()) target.publishStoredMetrics();
      log.removeKeys(Object.keys(keys));
    }
  };
  return {
    startSession: wrap('startSession', inner.startSession),
    sendTask: wrap('sendTask', inner.sendTask),
    pollTask: wrap('pollTask', inner.pollTask),
    terminateSession: wrap('terminateSession', inner.terminateSession),
  };
}

/** What a handler needs of Lambda's context: the time it has left. */
export function invocationContext(context: Pick<Context, 'getRemainingTimeInMillis'> | undefined): InvocationContext {
  return context ? { remainingMs: () => context.getRemainingTimeInMillis() } : {};
}

let handlers: WorkflowHandlers | undefined;
/** One set of handlers per warm container, so the API key cache survives between invocations. */
export function lambdaHandlers(): WorkflowHandlers {
  handlers ??= instrumentHandlers(makeHandlers(lambdaDeps()));
  return handlers;
}
