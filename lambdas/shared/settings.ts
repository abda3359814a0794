/**
 * The settings the construct hands the Lambdas through their environment, read and checked in one place. Pure:
 * the local runner reads the synthesized functions' environment with it too, so both executors run with the
 * settings that deploy.
 */
import { DEFAULT_POLL_PLAN, ENV, RESULT_LIMITS, type PollPlan } from './contract';
import { ConfigError } from './errors';

export interface WorkflowSettings {
  pollPlan: PollPlan;
  /** Results whose JSON is larger go to the result store. */
  inlineResultBytes: number;
}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, max = Infinity): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > max) {
    throw new ConfigError(`Environment variable ${name} must be a number from 0 to ${max}, got ${JSON.stringify(raw)}.`);
  }
  return value;
}

export function pollPlanFromEnv(env: NodeJS.ProcessEnv): PollPlan {
  return {
    intervalSeconds: number(env, ENV.pollInterval, DEFAULT_POLL_PLAN.intervalSeconds),
    holdSeconds: number(env, ENV.pollHold, DEFAULT_POLL_PLAN.holdSeconds),
    everySeconds: DEFAULT_POLL_PLAN.everySeconds,
    graceSeconds: DEFAULT_POLL_PLAN.graceSeconds,
  };
}

export function settingsFromEnv(env: NodeJS.ProcessEnv): WorkflowSettings {
  return {
    pollPlan: pollPlanFromEnv(env),
    inlineResultBytes: number(env, ENV.inlineResultBytes, RESULT_LIMITS.defaultInlineResultBytes, RESULT_LIMITS.inlineBudgetBytes),
  };
}

/** A pause that ends early (resolving) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
