/**
 * Every failure the workflow can end with. Each class's `name` is the exact error name a Step Functions
 * `ErrorEquals` matches, so the Lambdas throw these and the state machine retries and catches by the same
 * constants (`WebrunErrors`). Messages are one plain sentence and never contain the API key.
 */
import { WebrunErrors, type WebrunErrorName } from './contract';

export abstract class WebrunError extends Error {
  abstract override readonly name: WebrunErrorName;
  /** HTTP status, when the error came from an HTTP answer. */
  readonly status?: number;
  /** The API's error code (`RATE_LIMIT_EXCEEDED`, ...), when it sent one. */
  readonly code?: string;

  constructor(message: string, details: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.code = details.code;
  }
}

export class InvalidInput extends WebrunError {
  readonly name = WebrunErrors.InvalidInput;
  /** The JSONPath-like location of the offending field, e.g. `tasks[1].maxDuration`. */
  readonly field: string;
  constructor(field: string, problem: string, details: { status?: number; code?: string } = {}) {
    super(`${field}: ${problem}`, details);
    this.field = field;
  }
}

export class BadRequest extends WebrunError {
  readonly name = WebrunErrors.BadRequest;
}
export class Unauthorized extends WebrunError {
  readonly name = WebrunErrors.Unauthorized;
}
export class InsufficientBalance extends WebrunError {
  readonly name = WebrunErrors.InsufficientBalance;
}
export class RateLimited extends WebrunError {
  readonly name = WebrunErrors.RateLimited;
  /** Seconds the API asked us to wait (Retry-After), if it said. */
  readonly retryAfterSeconds?: number;
  constructor(message: string, details: { status?: number; code?: string; retryAfterSeconds?: number } = {}) {
    super(message, details);
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}
export class ServiceUnavailable extends WebrunError {
  readonly name = WebrunErrors.ServiceUnavailable;
}
export class ApiError extends WebrunError {
  readonly name = WebrunErrors.ApiError;
}
export class UnexpectedResponse extends WebrunError {
  readonly name = WebrunErrors.UnexpectedResponse;
}
export class SessionExpired extends WebrunError {
  readonly name = WebrunErrors.SessionExpired;
}
export class SessionLimitReached extends WebrunError {
  readonly name = WebrunErrors.SessionLimitReached;
}
export class TaskFailed extends WebrunError {
  readonly name = WebrunErrors.TaskFailed;
}
export class GuardrailTriggered extends WebrunError {
  readonly name = WebrunErrors.GuardrailTriggered;
  /** What the agent asked for, e.g. "I need login credentials". */
  readonly question: string;
  /** @param why why it was not answered (e.g. "no rule answers it"), when rules or a person could have */
  constructor(question: string, why?: string) {
    super(`The agent stopped at a guardrail and needs a human: ${question}${why ? ` (${why})` : ''}`);
    this.question = question;
  }
}
export class PollTimeout extends WebrunError {
  readonly name = WebrunErrors.PollTimeout;
}
export class ConfigError extends WebrunError {
  readonly name = WebrunErrors.ConfigError;
}
export class ResultStoreError extends WebrunError {
  readonly name = WebrunErrors.ResultStoreError;
}

export function isWebrunError(err: unknown): err is WebrunError {
  return err instanceof WebrunError;
}

export class BudgetExceeded extends WebrunError {
  readonly name = WebrunErrors.BudgetExceeded;
}
