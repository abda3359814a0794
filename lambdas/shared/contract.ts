/**
 * The contract every layer shares: state names, environment variable names, error and metric names, poll
 * defaults, input limits and Step Functions' quotas, and the shape of a failure's cause. It imports nothing, so
 * lib/ (the CDK code), lambdas/ (the handlers), local/ (the local executor) and cli/ can all depend on it without
 * pulling each other in: a Lambda bundle that imports a state name does not bundle aws-cdk-lib.
 */

/** State names: the local runner keys its overrides by them, the cleanup reads them in history, operators in the console. */
export const StateNames = {
  start: 'Start session',
  reportStartFailure: 'Report start failure',
  moreTasks: 'More tasks?',
  send: 'Send task',
  finished: 'Task finished?',
  wait: 'Wait before polling',
  poll: 'Poll task',
  record: 'Record result',
  terminate: 'Terminate session',
  collect: 'Collect results',
  succeeded: 'Workflow succeeded',
  terminateAfterFailure: 'Terminate session after failure',
  failed: 'Workflow failed',
  failedUnreported: 'Workflow failed before a report',
  failedCleanupUnconfirmed: 'Workflow failed, cleanup not confirmed',
} as const;

/** The states that end the session: a history in which one of them succeeded needs no cleanup. */
export const TERMINATE_STATES: readonly string[] = [StateNames.terminate, StateNames.terminateAfterFailure];

/** The EventBridge detail-type of an execution's status change, which the session cleanup listens to. */
export const EXECUTION_STATUS_CHANGE = 'Step Functions Execution Status Change';

/** The statuses whose executions may have left a session open: they end without running a terminate state. */
export const CLEANUP_STATUSES = ['ABORTED', 'TIMED_OUT', 'FAILED'] as const;

/** Environment variables the construct sets on the Lambdas (never the API key itself: only its secret's ARN). */
export const ENV = {
  secretArn: 'WEBRUN_SECRET_ARN',
  baseUrl: 'WEBRUN_BASE_URL',
  pollInterval: 'WEBRUN_POLL_INTERVAL_SECONDS',
  pollHold: 'WEBRUN_POLL_HOLD_SECONDS',
  /** The stack name: a dimension of the custom metrics, so two stacks in one account stay apart. */
  stackName: 'WEBRUN_STACK_NAME',
} as const;

export const DEFAULT_BASE_URL = 'https://connect.webrun.ai';

/** The field of the API key's secret that holds the key (the secret may also hold the bare key). */
export const API_KEY_FIELD = 'apiKey';

/**
 * The name prefix of the Secrets Manager secrets a task may name as site credentials. The send Lambda's IAM grant
 * covers these names only, and the API key's secret must not carry it (a task could otherwise hand the key to
 * the agent as a "login").
 */
export const SITE_SECRET_PREFIX = 'webrun-sfn/';

/** How pending tasks are polled. Unscaled seconds: they size the attempt cap the same way everywhere. */
export interface PollPlan {
  /** The Wait state between poll invocations. */
  intervalSeconds: number;
  /** How long one poll invocation keeps polling before it answers "pending" (0 = one GET per invocation). */
  holdSeconds: number;
  /** Pause between GETs inside one poll invocation (the API asks for 2-3 s). */
  everySeconds: number;
  /** Extra time beyond a task's maxDuration before the workflow gives up on it with Webrun.PollTimeout. */
  graceSeconds: number;
}

export const DEFAULT_POLL_PLAN: PollPlan = { intervalSeconds: 5, holdSeconds: 20, everySeconds: 3, graceSeconds: 60 };

/** What the execution input may hold. */
export const LIMITS = {
  /** Tasks per execution: keeps a worst-case run (every task at its 5-minute maximum) inside the default execution timeout and far below 25,000 history events. */
  maxTasks: 20,
  maxTaskDetailsChars: 20_000,
  /** The API's default and maximum task duration. */
  maxDurationMs: 300_000,
  minDurationMs: 1_000,
  maxTokens: 1_000_000,
  maxAvoidDomains: 100,
  maxFiles: 20,
  maxSiteCredentials: 10,
  /** Serialized input size: the input is carried in the state of every step, next to the results. */
  maxInputBytes: 64 * 1024,
} as const;

/** Step Functions' quotas that a design can break, enforced by the local runner as Step Functions enforces them. */
export const QUOTAS = {
  /** A state's input or output, a task's payload or result, in UTF-8 bytes. */
  maxPayloadBytes: 256 * 1024,
  /** An execution's (or a failed state's) cause, in characters. */
  maxCauseChars: 32_768,
  /** Events in an execution's history. */
  maxHistoryEvents: 25_000,
} as const;

/** Every error name the workflow ends with. A Lambda throws an error with this `name`; the state machine matches it. */
export const WebrunErrors = {
  InvalidInput: 'Webrun.InvalidInput',
  Unauthorized: 'Webrun.Unauthorized',
  InsufficientBalance: 'Webrun.InsufficientBalance',
  RateLimited: 'Webrun.RateLimited',
  ServiceUnavailable: 'Webrun.ServiceUnavailable',
  ApiError: 'Webrun.ApiError',
  UnexpectedResponse: 'Webrun.UnexpectedResponse',
  SessionExpired: 'Webrun.SessionExpired',
  SessionLimitReached: 'Webrun.SessionLimitReached',
  TaskFailed: 'Webrun.TaskFailed',
  GuardrailTriggered: 'Webrun.GuardrailTriggered',
  PollTimeout: 'Webrun.PollTimeout',
  ConfigError: 'Webrun.ConfigError',
} as const;

export type WebrunErrorName = (typeof WebrunErrors)[keyof typeof WebrunErrors];

/**
 * Errors that are safe to retry on any call: the API refused the request before doing anything
 * (429, 503 / INSTANCE_UNAVAILABLE, connection refused).
 */
export const RETRY_SAFE_ERRORS: readonly WebrunErrorName[] = [WebrunErrors.RateLimited, WebrunErrors.ServiceUnavailable];

/**
 * Errors that are transient but ambiguous: the request may have taken effect (500, a timeout or reset after the
 * request was sent). Retried only on idempotent calls (poll, terminate), never on start-session or send-message.
 */
export const RETRY_IDEMPOTENT_ONLY_ERRORS: readonly WebrunErrorName[] = [WebrunErrors.ApiError];

/** The custom CloudWatch metrics: emitted by the handlers, watched by the alarms and the dashboard. */
export const METRICS_NAMESPACE = 'WebrunSfn';
/** Powertools' `service` dimension. */
export const METRICS_SERVICE = 'webrun-sfn';
/** A second dimension keeps two stacks in one account and region apart: the stack name. */
export const METRICS_STACK_DIMENSION = 'stack';

export const WorkflowMetricNames = {
  sessionsStarted: 'SessionsStarted',
  tasksCompleted: 'TasksCompleted',
  tasksFailed: 'TasksFailed',
  guardrailsTriggered: 'GuardrailsTriggered',
  pollAttempts: 'PollAttempts',
  /** Milliseconds from sending a task to seeing it completed. */
  taskDuration: 'TaskDuration',
  sessionsTerminated: 'SessionsTerminated',
} as const;

export type WorkflowMetricName = (typeof WorkflowMetricNames)[keyof typeof WorkflowMetricNames];

/** The cap the failure report keeps its cause under (Step Functions allows 32,768 characters). */
export const MAX_CAUSE_CHARS = 32_000;
