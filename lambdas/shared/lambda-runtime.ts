/**
 * Binds the workflow handlers to the Lambda environment: the API key from Secrets Manager (the function gets
 * the secret's ARN, never its value), configuration from environment variables read once, Powertools logs.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ConfigError } from './errors';
import { DEFAULT_POLL_PLAN, makeHandlers, type HandlerDeps, type PollPlan, type WorkflowHandlers } from './handlers';
import { secretApiKeyReader } from './secret';
import { DEFAULT_BASE_URL, WebrunClient } from './webrun-client';

export const ENV = {
  secretArn: 'WEBRUN_SECRET_ARN',
  baseUrl: 'WEBRUN_BASE_URL',
  pollInterval: 'WEBRUN_POLL_INTERVAL_SECONDS',
  pollHold: 'WEBRUN_POLL_HOLD_SECONDS',
  pollEvery: 'WEBRUN_POLL_EVERY_SECONDS',
} as const;

export const logger = new Logger({ serviceName: 'webrun-sfn' });

function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new ConfigError(`Environment variable ${name} must be a non-negative number of seconds, got ${JSON.stringify(raw)}.`);
  return value;
}

export function pollPlanFromEnv(env: NodeJS.ProcessEnv): PollPlan {
  return {
    intervalSeconds: seconds(env, ENV.pollInterval, DEFAULT_POLL_PLAN.intervalSeconds),
    holdSeconds: seconds(env, ENV.pollHold, DEFAULT_POLL_PLAN.holdSeconds),
    everySeconds: seconds(env, ENV.pollEvery, DEFAULT_POLL_PLAN.everySeconds),
    graceSeconds: DEFAULT_POLL_PLAN.graceSeconds,
  };
}

/** Handler dependencies for a Lambda, from its environment. Configuration errors surface on first use. */
export function lambdaDeps(env: NodeJS.ProcessEnv = process.env): HandlerDeps {
  const secretArn = env[ENV.secretArn];
  const baseUrl = env[ENV.baseUrl] || DEFAULT_BASE_URL;
  const readKey = secretArn ? secretApiKeyReader({ secretId: secretArn }) : undefined;
  return {
    client: async () => {
      if (!readKey) throw new ConfigError(`Environment variable ${ENV.secretArn} is not set: the function does not know which secret holds the webrun API key.`);
      return new WebrunClient({ baseUrl, apiKey: await readKey() });
    },
    pollPlan: pollPlanFromEnv(env),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    log: {
      info: (message, fields) => logger.info(message, fields ?? {}),
      warn: (message, fields) => logger.warn(message, fields ?? {}),
      error: (message, fields) => logger.error(message, fields ?? {}),
    },
  };
}

let handlers: WorkflowHandlers | undefined;
/** One set of handlers per warm container, so the API key cache survives between invocations. */
export function lambdaHandlers(): WorkflowHandlers {
  handlers ??= makeHandlers(lambdaDeps());
  return handlers;
}
