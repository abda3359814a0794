/**
 * Turns state-level events of an execution into lines a person can follow. The events come from the local
 * executor's event log or from a deployed execution's history, so both show the same progress.
 */
import { StateNames } from '../lambdas/shared/contract';

/** The JSON cause of a workflow failure (lambdas/shared/handlers.ts `failureReport`), when it is one. */
export function parseFailureCause(cause: string | undefined): { message?: string; sessionId?: string | null; taskIndex?: number | null; completed?: unknown[] } | undefined {
  if (!cause) return undefined;
  try {
    const parsed = JSON.parse(cause) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, never>) : undefined;
  } catch {
    return undefined;
  }
}

/** The one-line story of a failure cause: its message, where, and how many results it kept (else the cause as is). */
export function readableCause(cause: string): string {
  const report = parseFailureCause(cause);
  if (report && typeof report.message === 'string') {
    const where = typeof report.taskIndex === 'number' ? ` (task ${report.taskIndex + 1})` : '';
    const kept = Array.isArray(report.completed) ? `; ${report.completed.length} completed result(s) kept in the cause` : '';
    return `${report.message}${where}${kept}.`;
  }
  return cause;
}

export interface StateEvent {
  type: 'entered' | 'exited' | 'retried' | 'caught' | 'failed';
  state: string;
  /** Milliseconds since the epoch. */
  at: number;
  input?: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const short = (text: string, max = 70) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Follows one execution: what it has done so far, and a line for each step worth telling. */
export class ProgressTracker {
  sessionId?: string;
  /** True once a terminate step finished for the session. */
  terminated = false;
  stateTransitions = 0;
  private taskCount = 0;
  private readonly taskStartedAt = new Map<number, number>();
  private readonly taskDetails: string[] = [];
  private lastError?: string;

  constructor(private readonly write: (line: string) => void) {}

  handle(event: StateEvent): void {
    if (event.type === 'entered' || event.type === 'retried') this.stateTransitions++;
    const input = obj(event.input);
    const output = obj(event.output);
    const label = (i: number) => `task ${i + 1}/${this.taskCount || '?'}`;

    if (event.type === 'retried') {
      this.write(`  retrying "${event.state}" after ${event.error ?? 'an error'}`);
      return;
    }
    if (event.type === 'failed') {
      this.lastError = event.error;
      return;
    }
    if (event.type === 'caught') {
      this.write(`  "${event.state}" failed: ${event.error ?? this.lastError ?? 'an error'}`);
      return;
    }
    if (event.type === 'entered' && event.state === StateNames.send) {
      const index = Number(input.index);
      const task = obj((input.tasks as unknown[] | undefined)?.[index]);
      this.taskStartedAt.set(index, event.at);
      this.write(`  ${label(index)} sent: ${JSON.stringify(short(String(task.taskDetails ?? this.taskDetails[index] ?? '')))}`);
      return;
    }
    if (event.type !== 'exited') return;
    switch (event.state) {
      case StateNames.start: {
        if (typeof output.sessionId !== 'string') break; // caught: the failure path reports it
        this.sessionId = typeof output.sessionId === 'string' ? output.sessionId : undefined;
        this.taskCount = Number(output.taskCount) || 0;
        for (const t of (output.tasks as unknown[] | undefined) ?? []) this.taskDetails.push(String(obj(t).taskDetails ?? ''));
        this.write(`  session ${this.sessionId} started (${this.taskCount} task${this.taskCount === 1 ? '' : 's'})`);
        break;
      }
      case StateNames.send:
      case StateNames.poll: {
        const progress = obj(output.progress);
        const index = Number(output.index);
        const elapsed = event.at - (this.taskStartedAt.get(index) ?? event.at);
        if (progress.status === 'completed') this.write(`  ${label(index)} completed in ${seconds(elapsed)}`);
        else if (progress.status === 'pending' && progress.attempt === 0) this.write(`  ${label(index)} pending, polling (at most ${progress.maxAttempts} polls)`);
        else if (progress.status === 'pending') this.write(`  ${label(index)} still pending after ${seconds(elapsed)} (poll ${progress.attempt}/${progress.maxAttempts})`);
        break;
      }
      case StateNames.terminate:
      case StateNames.terminateAfterFailure: {
        const report = obj(output.report);
        const sessionId = (report.sessionId as string | undefined) ?? (output.sessionId as string | undefined) ?? this.sessionId;
        if (sessionId) {
          this.terminated = true;
          this.write(`  session ${sessionId} ${report.alreadyEnded ? 'had already ended' : 'terminated'}`);
        }
        break;
      }
    }
  }
}
