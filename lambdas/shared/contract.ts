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
  next: 'Next step?',
  send: 'Send task',
  wait: 'Wait before polling',
  poll: 'Poll task',
  /** Completion by webhook: the doorbell never rang in time, so the task is followed by polling from here on. */
  fallBack: 'Fall back to polling',
  /** A guardrail question no rule answers, with `ask` set: a person is told and the execution waits for the answer. */
  askPerson: 'Ask a person',
  /** Sends the person's answer and follows the task on (by polling). */
  answerQuestion: 'Answer the question',
  /** No one answered in time: the failure the run ends with. */
  questionUnanswered: 'Question unanswered',
  terminate: 'Terminate session',
  succeeded: 'Workflow succeeded',
  terminateAfterFailure: 'Terminate session after failure',
  reportWithoutCleanup: 'Report without cleanup',
  formatReport: 'Format report',
  failed: 'Workflow failed',
  failedUnreported: 'Workflow failed before a report',
} as const;

/** The EventBridge event that tells a person a guardrail question waits for them (default bus). */
export const QUESTION_EVENT = { source: 'webrun-sfn', detailType: 'Guardrail question' } as const;

/** The EventBridge detail-type of an execution's status change, which the session cleanup listens to. */
export const EXECUTION_STATUS_CHANGE = 'Step Functions Execution Status Change';

/** The statuses whose executions may have left a session open: they end without running a terminate state. */
export const CLEANUP_STATUSES = ['ABORTED', 'TIMED_OUT', 'FAILED'] as const;

/**
 * The handlers of the one Lambda bundle, each an export of lambdas/index.ts: every function deploys that bundle and
 * runs one of them (its Lambda handler is `index.<name>`). The workflow's Task states invoke the first five (the
 * `HandlerName`s of ./handlers.ts); the API's doorbells and EventBridge invoke the other two.
 */
export const WEBRUN_HANDLERS = ['startSession', 'sendTask', 'pollTask', 'terminateSession', 'askPerson', 'receiveDoorbell', 'cleanupSession'] as const;
export type WebrunHandlerName = (typeof WEBRUN_HANDLERS)[number];

/** Environment variables the construct sets on the Lambdas (never the API key itself: only its secret's ARN). */
export const ENV = {
  secretArn: 'WEBRUN_SECRET_ARN',
  baseUrl: 'WEBRUN_BASE_URL',
  pollInterval: 'WEBRUN_POLL_INTERVAL_SECONDS',
  pollHold: 'WEBRUN_POLL_HOLD_SECONDS',
  /** The stack name: a dimension of the custom metrics, so two stacks in one account stay apart. */
  stackName: 'WEBRUN_STACK_NAME',
  /** The result store's bucket. */
  resultBucket: 'WEBRUN_RESULT_BUCKET',
  /** Results whose JSON is larger than this many bytes go to the result store. */
  inlineResultBytes: 'WEBRUN_INLINE_RESULT_BYTES',
  /** The session records' table. */
  sessionTable: 'WEBRUN_SESSION_TABLE',
  /** How long a session record is kept: longer than the execution timeout. */
  sessionTtlSeconds: 'WEBRUN_SESSION_TTL_SECONDS',
  /** The table of tasks waiting for their doorbell (completion by webhook). */
  waitingTable: 'WEBRUN_WAITING_TABLE',
  /** The public URL of the doorbell receiver (completion by webhook). */
  receiverUrl: 'WEBRUN_RECEIVER_URL',
  /** The SNS topic a person is e-mailed a guardrail question on (optional). */
  questionTopicArn: 'WEBRUN_QUESTION_TOPIC_ARN',
} as const;

/** How the workflow learns that a task ended. */
export const CompletionModes = {
  /** Wait states and poll invocations (the default): no public endpoint. */
  poll: 'poll',
  /** The API rings a webhook (a doorbell) and the execution waits on a task token; polling is the fallback. */
  webhook: 'webhook',
} as const;
export type CompletionMode = (typeof CompletionModes)[keyof typeof CompletionModes];

/**
 * How long a task sent with a doorbell may take before the workflow stops waiting for it and polls instead: its
 * maxDuration plus this (send-message may hold ~50 s first, and the task gets the poll plan's grace).
 */
export const DOORBELL_GRACE_SECONDS = 90;

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

/**
 * Holding inside one poll invocation is far cheaper than Step Functions transitions (a transition costs as much as
 * ~12 s of a 160 MB Lambda), so a poll invocation holds long enough to cover a whole task (the API's maximum is
 * 5 minutes) and GETs every 2 s (the API asks for 2-3 s): one poll cycle per task, detection within ~1 s.
 * `npm run bench` prints the figures.
 */
export const DEFAULT_POLL_PLAN: PollPlan = { intervalSeconds: 2, holdSeconds: 360, everySeconds: 2, graceSeconds: 60 };

/**
 * Memory of the functions that wait on the API (send-message may hold ~50 s, a poll holds minutes): sized by
 * measurement (`npm run bench` loads the bundled poll Lambda and handles 200 KiB results: ~100 MB at peak) with
 * room to spare. The short functions keep 256 MB, whose extra CPU shortens their cold starts.
 */
export const WAITING_FUNCTION_MEMORY_MB = 160;

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
  /** The API refused a request as malformed (HTTP 400 or 422) after the session existed: not the execution input's fault. */
  BadRequest: 'Webrun.BadRequest',
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
  /**
   * A completed result too large for the state could not be written to the result store (after the SDK's own
   * retries). The poll step retries it; a send step hands the task to the poll loop instead of failing.
   */
  ResultStoreError: 'Webrun.ResultStoreError',
  /** The run's cost crossed `session.maxCostUsd`: the task was stopped and the session ended. */
  BudgetExceeded: 'Webrun.BudgetExceeded',
  /** A question for a person (`guardrails.ask`) got no answer in time. */
  GuardrailUnanswered: 'Webrun.GuardrailUnanswered',
  /** A person answered a question with "stop". */
  GuardrailStopped: 'Webrun.GuardrailStopped',
} as const;

export type WebrunErrorName = (typeof WebrunErrors)[keyof typeof WebrunErrors];

/**
 * The failure a waiting "Ask a person" state gets when a person stops the run (SendTaskFailure's error and cause,
 * the cause in Lambda's error envelope as the failure step reads it): the same from `webrun-sfn answer --stop` and
 * from the local runner's terminal.
 */
export function personStopped(taskIndex: number): { error: string; cause: string } {
  const errorMessage = `A person stopped the run at the question of task ${taskIndex + 1}.`;
  return { error: WebrunErrors.GuardrailStopped, cause: JSON.stringify({ errorType: WebrunErrors.GuardrailStopped, errorMessage }) };
}

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

/** Every error a repeat of an idempotent call (a terminate, a GET) may cure: the two lists above. */
export const IDEMPOTENT_RETRY_ERRORS: ReadonlySet<string> = new Set([...RETRY_SAFE_ERRORS, ...RETRY_IDEMPOTENT_ONLY_ERRORS]);

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
  /** A doorbell that resumed a task (its answer confirmed with a GET). */
  doorbellsAnswered: 'DoorbellsAnswered',
  /** A POST to the receiver that resumed nothing: unknown, wrong auth, early, or a repeat. */
  doorbellsIgnored: 'DoorbellsIgnored',
  /** A task whose doorbell never rang in time: the workflow polled it instead. */
  webhookFallbacks: 'WebhookFallbacks',
  /** A guardrail question answered, by a rule or a person. */
  guardrailsAnswered: 'GuardrailsAnswered',
  /** US dollars a completed task cost (its usage.cost). */
  costUsd: 'CostUsd',
} as const;

export type WorkflowMetricName = (typeof WorkflowMetricNames)[keyof typeof WorkflowMetricNames];

/** The cap the failure report keeps its cause under (Step Functions allows 32,768 characters). */
export const MAX_CAUSE_CHARS = 32_000;

/**
 * Results kept in the state (and so in the output and a failure's cause) are small; larger ones go to the result
 * store and the state carries a `resultRef`. A result above `inlineResultBytes` is always stored, and the results
 * kept inline in one execution never add up to more than this budget, so that a failure's cause always has room
 * for every completed result (inline or by reference) under Step Functions' 32,768-character cap.
 */
export const RESULT_LIMITS = {
  /** Default of the construct prop and config field `inlineResultBytes`. */
  defaultInlineResultBytes: 8 * 1024,
  /** The most results of one execution kept inline, in bytes of their JSON. Also the largest `inlineResultBytes`. */
  inlineBudgetBytes: 16 * 1024,
  /** Default of `resultRetentionDays`: stored results expire after it. */
  defaultRetentionDays: 30,
} as const;

/** Token counts and cost of a task, as the API reports them. */
export interface Usage {
  inputTokens?: number;
  outputTokens?: number;
  cost?: number;
}

/** A finished task's answer, as the API's `data` object (`message`, `files`, ...). */
export type TaskData = Record<string, unknown>;

/** Where a stored result is: `s3://bucket/key` deployed, `file://...` locally; its size and SHA-256 (hex). */
export interface ResultRef {
  uri: string;
  bytes: number;
  sha256: string;
}

/** A guardrail question a task got on its way, and who answered it (never the answer: it may come from a secret). */
export interface AnsweredGuardrail {
  question: string;
  answeredBy: 'rule' | 'person';
}

/** One completed task in the workflow's output: its result inline, or a reference to it in the result store. */
export interface TaskResult {
  index: number;
  taskId: string | null;
  status: 'completed';
  result?: TaskData;
  resultRef?: ResultRef;
  usage?: Usage;
  /** The guardrail questions the task got, answered by a rule or a person. */
  guardrails?: AnsweredGuardrail[];
}

/** Success output of an execution. */
export interface WorkflowOutput {
  sessionId: string;
  tasks: TaskResult[];
  /** The run's total: tokens and cost summed over its tasks. */
  usage?: Usage;
}

/**
 * The JSON cause of a failed execution: one sentence, where it failed, every completed result (inline or by
 * reference), and whether the session's end was confirmed (null when no session existed).
 */
export interface FailureCause {
  message: string;
  sessionId: string | null;
  taskIndex: number | null;
  completed: TaskResult[];
  sessionEnded: boolean | null;
  /** The error that kept the session's end from being confirmed. */
  cleanupError?: string;
}
