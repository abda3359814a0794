/**
 * Guardrail questions waiting for a person, on deployed executions: `webrun-sfn pending` lists them, `webrun-sfn
 * answer <executionArn> "<text>"` (or `--stop`) answers one. A waiting "Ask a person" state holds its task token in
 * its scheduled parameters (the execution history), so answering needs no other store; the token is used, never
 * printed.
 */
import {
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  type HistoryEvent,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { personStopped, StateNames } from '../lambdas/shared/contract';
import type { LoopState } from '../lambdas/shared/state';
import { CliError, describeAwsError, EXIT, parseStatesArn, regionForArn } from './aws';
import { clientsOf, resolveStateMachine, type CommandIo, type CommonOptions, type TargetOptions } from './commands';

export interface WaitingQuestion {
  executionArn: string;
  taskIndex: number;
  question: string;
  /** When the person's time runs out (ISO). */
  deadline: string;
}

async function call<T>(fn: () => Promise<T>, arn: string, region: string | undefined): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw describeAwsError(err, { arn, region });
  }
}

/** The question an execution waits on, and its token, from the newest events of its history; undefined if none. */
export async function waitingQuestion(client: SFNClient, executionArn: string): Promise<(WaitingQuestion & { token: string }) | undefined> {
  const page = await client.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 50, includeExecutionData: true }));
  const events: HistoryEvent[] = page.events ?? [];
  // Newest first: the question waits if "Ask a person" was entered and has not exited since. Its token is the newest
  // attempt's (a retried invocation gets a token of its own); between a failed attempt and its retry, none waits.
  let scheduled: HistoryEvent | undefined;
  for (const e of events) {
    if (e.type === 'TaskStateExited' || e.type?.startsWith('Execution')) return undefined;
    if (!scheduled && (e.type === 'TaskFailed' || e.type === 'TaskTimedOut')) return undefined;
    if (e.type === 'TaskScheduled') scheduled ??= e;
    if (e.type === 'TaskStateEntered') {
      if (e.stateEnteredEventDetails?.name !== StateNames.askPerson || !scheduled) return undefined;
      const input = JSON.parse(e.stateEnteredEventDetails.input ?? '{}') as { loop?: LoopState };
      const parameters = JSON.parse(scheduled.taskScheduledEventDetails?.parameters ?? '{}') as { Payload?: { token?: string } };
      const token = parameters.Payload?.token;
      const question = input.loop?.question;
      if (!token || !question) return undefined;
      const entered = e.timestamp ? new Date(e.timestamp).getTime() : Date.now();
      return { executionArn, taskIndex: input.loop!.index, question: question.text, deadline: new Date(entered + question.timeoutSeconds * 1000).toISOString(), token };
    }
  }
  return undefined;
}

/** `pending`: the running executions of the state machine that wait for a person's answer. */
export async function pendingCommand(io: CommandIo, opts: TargetOptions): Promise<number> {
  const target = await resolveStateMachine(io, opts);
  const client = clientsOf(io).sfn(target.region);
  const waiting: WaitingQuestion[] = [];
  // Every running execution, page by page: a question must not go unlisted because more than a page of runs wait.
  let nextToken: string | undefined;
  do {
    const running = await call(() => client.send(new ListExecutionsCommand({ stateMachineArn: target.arn, statusFilter: 'RUNNING', maxResults: 100, nextToken })), target.arn, target.region);
    for (const e of running.executions ?? []) {
      const q = await call(() => waitingQuestion(client, e.executionArn ?? ''), e.executionArn ?? '', target.region);
      if (q) waiting.push({ executionArn: q.executionArn, taskIndex: q.taskIndex, question: q.question, deadline: q.deadline });
    }
    nextToken = running.nextToken;
  } while (nextToken);
  if (opts.json) io.stdout(`${JSON.stringify({ stateMachineArn: target.arn, questions: waiting })}\n`);
  else if (waiting.length === 0) io.stderr('webrun-sfn: no question waits for an answer\n');
  else for (const q of waiting) io.stdout(`${q.executionArn}\n  task ${q.taskIndex + 1} asks: ${q.question}\n  answer before ${q.deadline}: npx webrun-sfn answer ${q.executionArn} "<your answer>" (or --stop)\n`);
  return EXIT.ok;
}

export interface AnswerOptions extends CommonOptions {
  stop: boolean;
}

/** `answer <executionArn> "<text>" | --stop`: resumes the waiting "Ask a person" state with the answer, or stops the run. */
export async function answerCommand(io: CommandIo, opts: AnswerOptions, executionArn: string, answer: string | undefined): Promise<number> {
  const region = regionForArn(parseStatesArn(executionArn, 'execution'), opts.region, 'execution');
  if (opts.stop === (answer !== undefined)) throw new CliError('give either an answer ("<text>") or --stop', true);
  if (answer !== undefined && answer.trim() === '') throw new CliError('the answer must not be empty', true);
  const client = clientsOf(io).sfn(region);
  const q = await call(() => waitingQuestion(client, executionArn), executionArn, region);
  if (!q) throw new CliError(`${executionArn} waits for no answer (it is not at "${StateNames.askPerson}", or it ended)`, false, 'NoQuestion');
  if (opts.stop) {
    await call(() => client.send(new SendTaskFailureCommand({ taskToken: q.token, ...personStopped(q.taskIndex) })), executionArn, region);
  } else {
    await call(() => client.send(new SendTaskSuccessCommand({ taskToken: q.token, output: JSON.stringify({ answer }) })), executionArn, region);
  }
  if (opts.json) io.stdout(`${JSON.stringify({ executionArn, taskIndex: q.taskIndex, answered: !opts.stop, stopped: opts.stop })}\n`);
  io.stderr(`webrun-sfn: ${opts.stop ? 'stopped the run at' : 'answered'} task ${q.taskIndex + 1}'s question: ${q.question}\n`);
  return EXIT.ok;
}
