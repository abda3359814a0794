/**
 * Step Functions' quotas, enforced on a local execution the way Step Functions enforces them: a state's input or
 * output, or a task's payload or result, over 256 KiB fails the execution with States.DataLimitExceeded; a Fail
 * state's cause over 32,768 characters too; and the execution fails with States.Runtime when its history would
 * pass 25,000 events. Neither error can be caught by `States.ALL`, so the execution ends at once, as deployed.
 * aws-local-stepfunctions checks none of them: without this a design that breaks deployed passes locally.
 */
import { QUOTAS } from '../lambdas/shared/contract';
import { bytesOf } from '../lambdas/shared/result-store';

export interface QuotaViolation {
  name: 'States.DataLimitExceeded' | 'States.Runtime';
  cause: string;
}


/** History events a state adds when entered, by type (AWS: entered, plus scheduled/started/ended per Task attempt). */
const ENTER_EVENTS: Record<string, number> = { Task: 4 };
/** Events a retried Task attempt adds (scheduled, started, and its end). */
const RETRY_EVENTS = 3;
/** A Task that waits for a task token adds one more event each attempt: TaskSubmitted, when the call handing the token over returns. */
const SUBMITTED_EVENTS = 1;

export class QuotaGuard {
  /** ExecutionStarted. */
  historyEvents = 1;
  largestPayloadBytes = 0;
  violation?: QuotaViolation;

  constructor(private readonly onViolation: (v: QuotaViolation) => void) {}

  private fail(v: QuotaViolation): void {
    if (this.violation) return;
    this.violation = v;
    this.onViolation(v);
  }

  /** Checks a payload against the 256 KiB quota; what names where it was seen. */
  payload(value: unknown, what: string): void {
    const size = bytesOf(value);
    this.largestPayloadBytes = Math.max(this.largestPayloadBytes, size);
    if (size > QUOTAS.maxPayloadBytes) {
      this.fail({ name: 'States.DataLimitExceeded', cause: `${what} has ${size} bytes, more than the ${QUOTAS.maxPayloadBytes} bytes Step Functions allows.` });
    }
  }

  /** Counts the history events a state adds and fails the execution where Step Functions would. */
  private count(events: number): void {
    this.historyEvents += events;
    // Event 25,000 is the ExecutionFailed event: the last one the execution itself may produce is 24,999.
    if (this.historyEvents >= QUOTAS.maxHistoryEvents) {
      this.historyEvents = QUOTAS.maxHistoryEvents;
      this.fail({ name: 'States.Runtime', cause: `The execution reached the maximum number of history events (${QUOTAS.maxHistoryEvents}).` });
    }
  }

  /** `waitsForToken`: the state is a Task that waits for a task token (`.waitForTaskToken`). */
  entered(state: string, type: string, input: unknown, waitsForToken = false): void {
    this.count((ENTER_EVENTS[type] ?? 1) + (waitsForToken ? SUBMITTED_EVENTS : 0));
    this.payload(input, `The input of state "${state}"`);
  }

  retried(waitsForToken = false): void {
    this.count(RETRY_EVENTS + (waitsForToken ? SUBMITTED_EVENTS : 0));
  }

  exited(state: string, output: unknown): void {
    this.count(1);
    this.payload(output, `The output of state "${state}"`);
  }

  /** A Fail state's cause: Step Functions takes at most 32,768 characters. */
  failed(state: string, cause: string | undefined): void {
    if (cause !== undefined && cause.length > QUOTAS.maxCauseChars) {
      this.fail({ name: 'States.DataLimitExceeded', cause: `The cause of state "${state}" has ${cause.length} characters, more than the ${QUOTAS.maxCauseChars} Step Functions allows.` });
    }
  }
}
