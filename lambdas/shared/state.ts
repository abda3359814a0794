/**
 * The execution state between steps, and the event each Task state sends its handler. The state machine
 * (lib/workflow-definition.ts) builds the events from these types (a payload whose keys do not match fails to
 * compile there), and each handler checks its event at run time before it acts.
 *
 * The state has two parts: `run`, written once by Start session (the session and the validated tasks), and `loop`,
 * which each step replaces (`ResultPath: $.loop`). A handler returns only the new `loop`, so nothing it did not
 * change passes through it, and no result is ever in the state twice.
 */
import { createHash } from 'node:crypto';
import type { AnsweredGuardrail, TaskResult } from './contract';
import type { SessionOptions, WorkflowTask } from './types';

export interface RunState {
  sessionId: string;
  tasks: WorkflowTask[];
  taskCount: number;
  /** The session's guardrail rules (a task's own come first). */
  guardrails?: SessionOptions['guardrails'];
  /** The run's budget: crossing it stops the task and ends the run with Webrun.BudgetExceeded. */
  maxCostUsd?: number;
}

/** The task that was sent and is not finished yet. */
export interface PendingTask {
  taskId: string;
  /** Poll invocations so far (0 right after send). */
  attempt: number;
  /** Poll invocations allowed before Webrun.PollTimeout. */
  maxAttempts: number;
  /** When send-message was called (epoch ms), for the task-duration metric. */
  sentAt: number;
  /** The guardrail questions answered so far (the result lists them; `maxAnswers` bounds them). */
  answered?: AnsweredGuardrail[];
}

/** A guardrail question no rule answers, waiting for a person (`guardrails.ask`). */
export interface Question {
  text: string;
  /** How long the person has (the Ask state's TimeoutSecondsPath). */
  timeoutSeconds: number;
}

export interface LoopState {
  /** The task to send next, or the one pending. */
  index: number;
  /** `question`: the pending task stopped at a guardrail that a person must answer. */
  status: 'ready' | 'pending' | 'question';
  /** Present while `status` is `pending` or `question`. */
  pending?: PendingTask;
  /** Present while `status` is `question`. */
  question?: Question;
  /** Completed tasks, in order: small results inline, larger ones by reference. */
  results: TaskResult[];
  /**
   * Completion by webhook: how long the send of the task at `index` may wait for its doorbell before the workflow
   * polls it instead (the Send state's `TimeoutSecondsPath`). Present while a task is left to send.
   */
  waitSeconds?: number;
}

export interface WorkflowState {
  run: RunState;
  loop: LoopState;
}

/** What a caught error looks like in the state (`Catch` with `ResultPath: $.failure`). */
export interface CaughtError {
  Error?: string;
  Cause?: string;
}

/** Start session: the raw execution input, validated by the handler. */
export interface StartEvent {
  /** `$$.Execution.Id`: keys the session record, the stored results and every log line. */
  executionArn: string;
  input: unknown;
}

/** Send task, Poll task and Terminate session (success path). */
export interface StepEvent {
  executionArn: string;
  run: RunState;
  loop: LoopState;
}

/** Send task when completion is by webhook: the execution waits on this task token. */
export interface SendAndWaitEvent extends StepEvent {
  token: string;
}

/** Ask a person: the execution waits on this token until the answer (or a stop, or the timeout). */
export interface AskEvent extends StepEvent {
  token: string;
}

/** A person's answer, as `webrun-sfn answer` (or the local prompt) resumes the Ask state with it. */
export interface PersonsAnswer {
  answer: string;
}

/** Answer the question: send the person's answer and follow the task on. */
export interface AnswerEvent extends StepEvent {
  answer: PersonsAnswer;
}

/** Fall back to polling: the doorbell of the task at `loop.index` never rang in time. */
export interface FallbackEvent extends StepEvent {
  fallback: true;
}

/** What the doorbell receiver gets: the request, as a Lambda Function URL or the local receiver passes it. */
export interface DoorbellRequest {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
}

export interface DoorbellAnswer {
  status: number;
  body: { outcome: 'resumed' | 'answered' | 'already-resumed' | 'not-ended' | 'not-yet-known' | 'not-stored' | 'unknown' | 'unauthorized' | 'refused' };
}

/** Terminate session after failure (with the run) and Report start failure (without: no session exists). */
export interface FailureEvent {
  executionArn: string;
  run?: RunState;
  loop?: LoopState;
  failure: CaughtError;
}

/** A report for the Fail state: the error name and the JSON cause (contract `FailureCause`). */
export interface FailureReport {
  error: string;
  cause: string;
}

/** The key a stored result of task `index` gets: one object per task, so a retried step overwrites its own. */
export function resultKey(executionArn: string, index: number): string {
  // arn:<partition>:states:<region>:<account>:execution:<state machine>:<execution name>
  const parts = executionArn.split(':');
  const execution = parts.length >= 8 ? `${parts[6]}/${parts.slice(7).join(':')}` : executionArn;
  const plain = execution.replace(/[^A-Za-z0-9/_.-]/g, '_');
  // A name with other characters (Step Functions allows + = @ ! ' ( ) and any letter) gets a digest of the ARN too:
  // order+42 and order=42 would otherwise share a key, the later run overwriting the earlier one's results.
  const key = plain === execution ? plain : `${plain}-${createHash('sha256').update(executionArn).digest('hex').slice(0, 16)}`;
  return `${key}/task-${index}.json`;
}
