/**
 * Turns state-level events of an execution into lines a person can follow. The events come from the local
 * executor's event log or from a deployed execution's history, so both show the same progress.
 */
import { StateNames, type FailureCause, type TaskResult } from '../lambdas/shared/contract';
import type { LoopState, RunState, WorkflowState } from '../lambdas/shared/state';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});

/** The JSON cause of a workflow failure (lambdas/shared/handlers.ts `failureReport`), when it is one. */
export function parseFailureCause(cause: string | undefined): Partial<FailureCause> | undefined {
  if (!cause) return undefined;
  try {
    const parsed = JSON.parse(cause) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Partial<FailureCause>) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a cause is the workflow's failure report (a JSON object with its message), rather than a bare sentence. */
export function isFailureReport(cause: string | undefined): boolean {
  return typeof parseFailureCause(cause)?.message === 'string';
}

/** The story of a failure cause: its message, where, how many results it kept, the session's end (else the cause as is). */
export function readableCause(cause: string): string {
  const report = parseFailureCause(cause);
  if (report && typeof report.message === 'string') {
    const where = typeof report.taskIndex === 'number' ? ` (task ${report.taskIndex + 1})` : '';
    const kept = Array.isArray(report.completed) ? `; ${report.completed.length} completed result(s) kept in the cause` : '';
    const open = report.sessionEnded === false ? `\n  The session ${report.sessionId} could not be confirmed ended${report.cleanupError ? ` (${report.cleanupError})` : ''}: it may still be open and billed.` : '';
    // One sentence: the message's own full stop would land before "(task n)" or "; n completed ...".
    return `${report.message.replace(/\.\s*$/, '')}${where}${kept}.${open}`;
  }
  return cause;
}

/**
 * What stdout gets for a failure without --json: the results its cause kept, with the session (they are the
 * user's data), or nothing when it kept none. The local command and `webrun-sfn result`/`follow` print the same.
 */
export function keptResultsText(cause: string | undefined, sessionId: string | undefined): string | undefined {
  const completed = parseFailureCause(cause)?.completed;
  if (!Array.isArray(completed) || completed.length === 0) return undefined;
  return `${JSON.stringify({ sessionId: sessionId ?? null, completed }, null, 2)}\n`;
}

/** Where a run stood, as a state's data holds it: its session, the task it was at, and the results it completed. */
export interface RunSoFar {
  sessionId: string | null;
  taskIndex: number | null;
  completed: TaskResult[];
}

/** The run's standing in one state's input or output (`$.run.sessionId`, `$.loop.index`, `$.loop.results`), if it holds it. */
export function runSoFar(data: unknown): RunSoFar | undefined {
  // Read through the state's types (lambdas/shared/state.ts): a renamed field fails to compile here.
  const state = obj(data) as Partial<Record<keyof WorkflowState, unknown>>;
  const loop = obj(state.loop) as Partial<LoopState>;
  if (!Array.isArray(loop.results)) return undefined;
  const run = obj(state.run) as Partial<RunState>;
  return {
    sessionId: typeof run.sessionId === 'string' ? run.sessionId : null,
    taskIndex: typeof loop.index === 'number' ? loop.index : null,
    completed: loop.results,
  };
}

/**
 * The cause of a failure that skipped the workflow's own failure step (a stop, the execution timeout, a broken
 * quota), as that step would have written it: the message, and the run's session and completed results as the
 * last state data showed them, so those results are kept with the failure. A cause that already is such a report
 * is returned as it is.
 */
export function causeKeepingResults(cause: string, soFar: RunSoFar, session: { sessionEnded: boolean | null; cleanupError?: string }): string {
  if (isFailureReport(cause)) return cause;
  const report: FailureCause = { message: cause, sessionId: soFar.sessionId, taskIndex: soFar.taskIndex, completed: soFar.completed, sessionEnded: session.sessionEnded };
  if (session.cleanupError) report.cleanupError = session.cleanupError;
  return JSON.stringify(report);
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

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const short = (text: string, max = 70) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Follows one execution: what it has done so far, and a line for each step worth telling. */
export class ProgressTracker {
  sessionId?: string;
  stateTransitions = 0;
  /** The run's standing in the latest state data that held it: what a failure that skips the failure step keeps. */
  soFar?: RunSoFar;
  private taskCount = 0;
  private readonly taskStartedAt = new Map<number, number>();
  private lastError?: string;
  /** The state whose failure was just caught: its exit carries the unchanged input, not a result. */
  private caught?: string;

  constructor(private readonly write: (line: string) => void) {}

  handle(event: StateEvent): void {
    if (event.type === 'entered' || event.type === 'retried') this.stateTransitions++;
    this.soFar = runSoFar(event.type === 'entered' ? event.input : event.type === 'exited' ? event.output : undefined) ?? this.soFar;
    const input = obj(event.input);
    const output = obj(event.output);
    const label = (i: number) => `task ${i + 1}/${this.taskCount || '?'}`;

    if (event.type === 'retried') {
      this.write(`  retrying "${event.state}" after ${event.error ?? this.lastError ?? 'an error'}`);
      return;
    }
    if (event.type === 'failed') {
      this.lastError = event.error;
      return;
    }
    if (event.type === 'caught') {
      this.caught = event.state;
      this.write(`  "${event.state}" ${(event.error ?? this.lastError) === 'States.Timeout' && event.state === StateNames.send ? 'got no doorbell in time: polling the task instead' : `failed: ${event.error ?? this.lastError ?? 'an error'}`}`);
      return;
    }
    if (event.type === 'entered' && event.state === StateNames.send) {
      const index = Number(obj(input.loop).index);
      const task = obj((obj(input.run).tasks as unknown[] | undefined)?.[index]);
      this.taskStartedAt.set(index, event.at);
      this.write(`  ${label(index)} sent: ${JSON.stringify(short(String(task.taskDetails ?? '')))}`);
      return;
    }
    if (event.type !== 'exited') return;
    if (this.caught === event.state) {
      this.caught = undefined;
      return;
    }
    switch (event.state) {
      case StateNames.start: {
        const run = obj(output.run);
        if (typeof run.sessionId !== 'string') break; // caught: the failure path reports it
        this.sessionId = run.sessionId;
        this.taskCount = Number(run.taskCount) || 0;
        this.write(`  session ${this.sessionId} started (${this.taskCount} task${this.taskCount === 1 ? '' : 's'})`);
        break;
      }
      case StateNames.answerQuestion:
        this.write(`  ${label(Number(obj(output.loop).index))}: the answer was sent, following the task on`);
        break;
      case StateNames.send:
      case StateNames.poll:
      case StateNames.fallBack: {
        const loop = obj(output.loop);
        const pending = obj(loop.pending);
        if (loop.status === 'question') {
          const question = obj(loop.question);
          this.write(`  ${label(Number(loop.index))} stopped at a question for a person: ${JSON.stringify(short(String(question.text ?? '')))}`);
        } else if (loop.status === 'ready') {
          const index = Number(loop.index) - 1;
          const elapsed = event.at - (this.taskStartedAt.get(index) ?? event.at);
          const entry = obj((loop.results as unknown[] | undefined)?.find((r) => obj(r).index === index));
          const answered = Array.isArray(entry.guardrails) ? entry.guardrails.map((g) => `${JSON.stringify(short(String(obj(g).question ?? '')))} answered by a ${String(obj(g).answeredBy)}`) : [];
          this.write(`  ${label(index)} completed in ${seconds(elapsed)}${entry.resultRef ? ` (result stored: ${String(obj(entry.resultRef).uri)})` : ''}${answered.length ? `; ${answered.join(', ')}` : ''}`);
        } else if (pending.attempt === 0) {
          this.write(`  ${label(Number(loop.index))} pending, polling (at most ${pending.maxAttempts} polls)`);
        } else {
          const index = Number(loop.index);
          const elapsed = event.at - (this.taskStartedAt.get(index) ?? event.at);
          this.write(`  ${label(index)} still pending after ${seconds(elapsed)} (poll ${pending.attempt}/${pending.maxAttempts})`);
        }
        break;
      }
      case StateNames.terminate:
        this.write(`  session ${String(output.sessionId ?? this.sessionId)} terminated`);
        break;
      case StateNames.terminateAfterFailure: {
        const report = parseFailureCause(obj(output.report).cause as string | undefined);
        if (!report?.sessionId) break;
        this.write(report.sessionEnded ? `  session ${report.sessionId} terminated` : `  session ${report.sessionId} could not be confirmed ended (${report.cleanupError ?? 'error'})`);
        break;
      }
    }
  }
}
