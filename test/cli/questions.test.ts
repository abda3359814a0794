/**
 * `webrun-sfn pending` and `webrun-sfn answer`, against a mocked Step Functions client: the question and its token
 * are read from the execution history of a waiting "Ask a person" state, the answer resumes it by
 * SendTaskSuccess (a stop by SendTaskFailure), and the token is never printed. The last case drives a real local
 * run to its question and resumes it through the CLI path.
 */
import { randomUUID } from 'node:crypto';
import {
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import { StateNames, WebrunErrors } from '../../lambdas/shared/contract';
import type { PersonsAnswer } from '../../lambdas/shared/state';
import { startEmulator, type Emulator } from '../../local/emulator';
import { runLocalWorkflow } from '../../local/runner';
import { EXECUTION_ARN, history, REGION, STATE_MACHINE_ARN } from './fixtures';

const sfn = mockClient(SFNClient);
const TOKEN = 'AQCEAAAAKgAAAA-secret-task-token-7f3a';

interface Run { code: number; stdout: string; stderr: string }
async function cli(argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main({
    argv, env: {}, cwd: process.cwd(), sleep: async () => {}, readStdin: async () => '',
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    clients: { sfn: (region: string | undefined) => new SFNClient({ region: region ?? 'us-east-1' }) } as never,
  });
  return { code, stdout, stderr };
}

/** The newest events of an execution waiting at "Ask a person" (GetExecutionHistory with reverseOrder). */
function waitingHistory(taskIndex: number, question: string, token = TOKEN, timeoutSeconds = 240): HistoryEvent[] {
  const state = {
    run: { sessionId: 's-1', tasks: [], taskCount: taskIndex + 1 },
    loop: { index: taskIndex, status: 'question', pending: { taskId: 't-1', attempt: 0, maxAttempts: 10, sentAt: 0 }, question: { text: question, timeoutSeconds }, results: [] },
  };
  return history([
    { type: 'TaskStateEntered', stateEnteredEventDetails: { name: StateNames.askPerson, input: JSON.stringify(state) } },
    { type: 'TaskScheduled', taskScheduledEventDetails: { resourceType: 'lambda', resource: 'invoke.waitForTaskToken', region: REGION, parameters: JSON.stringify({ FunctionName: 'ask', Payload: { ...state, token } }) } },
    { type: 'TaskStarted' },
    { type: 'TaskSubmitted' },
  ] as never, Date.parse('2030-01-01T09:00:00Z')).reverse();
}

beforeEach(() => sfn.reset());

describe('answer', () => {
  it('resumes the waiting state with {"answer"} by SendTaskSuccess, and prints neither the token nor the answer\'s path', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: waitingHistory(1, 'Which account?') });
    sfn.on(SendTaskSuccessCommand).resolves({});
    const r = await cli(['answer', EXECUTION_ARN, 'the business one']);
    expect(r.code).toBe(0);
    expect(sfn.commandCalls(SendTaskSuccessCommand)[0].args[0].input).toEqual({ taskToken: TOKEN, output: JSON.stringify({ answer: 'the business one' }) });
    expect(r.stderr).toContain("answered task 2's question: Which account?");
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    expect(sfn.commandCalls(GetExecutionHistoryCommand)[0].args[0].input).toMatchObject({ executionArn: EXECUTION_ARN, reverseOrder: true });
  });

  it('answers with the token of the newest attempt when "Ask a person" was retried, and refuses between an attempt that failed and its retry', async () => {
    const [submitted, started, scheduledNew, entered] = waitingHistory(1, 'Which account?', 'token-of-the-retry');
    const [, , scheduledOld] = waitingHistory(1, 'Which account?', 'token-of-the-failed-attempt');
    const failed = { type: 'TaskFailed', taskFailedEventDetails: { error: 'Lambda.ServiceException' } } as HistoryEvent;
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [submitted, started, scheduledNew, failed, started, scheduledOld, entered] });
    sfn.on(SendTaskSuccessCommand).resolves({});
    expect((await cli(['answer', EXECUTION_ARN, 'the business one'])).code).toBe(0);
    expect(sfn.commandCalls(SendTaskSuccessCommand)[0].args[0].input.taskToken).toBe('token-of-the-retry');

    sfn.reset();
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [failed, started, scheduledOld, entered] });
    const between = await cli(['answer', EXECUTION_ARN, 'the business one']);
    expect(between.code).toBe(2);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('--stop fails the waiting state with Webrun.GuardrailStopped', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: waitingHistory(0, 'Pay 2,000 EUR?') });
    sfn.on(SendTaskFailureCommand).resolves({});
    const r = await cli(['answer', EXECUTION_ARN, '--stop', '--json']);
    expect(r.code).toBe(0);
    expect(sfn.commandCalls(SendTaskFailureCommand)[0].args[0].input).toMatchObject({ taskToken: TOKEN, error: WebrunErrors.GuardrailStopped });
    expect(JSON.parse(sfn.commandCalls(SendTaskFailureCommand)[0].args[0].input.cause!)).toEqual({ errorType: WebrunErrors.GuardrailStopped, errorMessage: 'A person stopped the run at the question of task 1.' });
    expect(JSON.parse(r.stdout)).toEqual({ executionArn: EXECUTION_ARN, taskIndex: 0, answered: false, stopped: true });
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });

  it('refuses an execution that waits for no answer, without sending anything', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: history([{ type: 'ExecutionStarted' }, { type: 'TaskStateEntered', stateEnteredEventDetails: { name: StateNames.poll, input: '{}' } }] as never).reverse() });
    const r = await cli(['answer', EXECUTION_ARN, 'yes']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('waits for no answer');
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it.each([
    [['answer', EXECUTION_ARN], 'give either an answer'],
    [['answer', EXECUTION_ARN, 'yes', '--stop'], 'give either an answer'],
    [['answer', EXECUTION_ARN, '   '], 'must not be empty'],
    [['answer', 'arn:aws:states:eu-west-1:123456789012:stateMachine:X', 'yes'], 'execution'],
  ])('refuses %j before calling AWS', async (argv, message) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(sfn.calls()).toHaveLength(0);
  });
});

describe('pending', () => {
  it('lists the running executions that wait at a question, with the command that answers', async () => {
    const other = EXECUTION_ARN.replace('run-1', 'run-2');
    sfn.on(ListExecutionsCommand).resolves({ executions: [{ executionArn: EXECUTION_ARN }, { executionArn: other }] as never });
    sfn.on(GetExecutionHistoryCommand, { executionArn: EXECUTION_ARN }).resolves({ events: waitingHistory(0, 'Which size?', TOKEN, 120) });
    sfn.on(GetExecutionHistoryCommand, { executionArn: other }).resolves({ events: history([{ type: 'TaskStateEntered', stateEnteredEventDetails: { name: StateNames.poll, input: '{}' } }] as never) });
    const r = await cli(['pending', '--state-machine-arn', STATE_MACHINE_ARN, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      stateMachineArn: STATE_MACHINE_ARN,
      questions: [{ executionArn: EXECUTION_ARN, taskIndex: 0, question: 'Which size?', deadline: '2030-01-01T09:02:00.000Z' }],
    });
    expect(sfn.commandCalls(ListExecutionsCommand)[0].args[0].input).toMatchObject({ stateMachineArn: STATE_MACHINE_ARN, statusFilter: 'RUNNING' });
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });
});

describe('pending, with more running executions than a page', () => {
  it('reads every page of running executions, so a question on the second page is listed', async () => {
    const later = EXECUTION_ARN.replace('run-1', 'run-101');
    sfn.on(ListExecutionsCommand)
      .resolvesOnce({ executions: [{ executionArn: EXECUTION_ARN }] as never, nextToken: 'page-2' })
      .resolves({ executions: [{ executionArn: later }] as never });
    sfn.on(GetExecutionHistoryCommand, { executionArn: EXECUTION_ARN }).resolves({ events: history([{ type: 'TaskStateEntered', stateEnteredEventDetails: { name: StateNames.poll, input: '{}' } }] as never) });
    sfn.on(GetExecutionHistoryCommand, { executionArn: later }).resolves({ events: waitingHistory(2, 'Which colour?') });
    const r = await cli(['pending', '--state-machine-arn', STATE_MACHINE_ARN, '--json']);
    expect(JSON.parse(r.stdout).questions).toEqual([expect.objectContaining({ executionArn: later, taskIndex: 2, question: 'Which colour?' })]);
    expect(sfn.commandCalls(ListExecutionsCommand).map((c) => c.args[0].input.nextToken)).toEqual([undefined, 'page-2']);
  });
});

describe('a person\'s answer through the CLI resumes a run', () => {
  const API_KEY = 'wr-cli-answer-KEY-19ab';
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ apiKey: API_KEY, pendingPolls: 1 });
  });
  afterAll(() => emulator.close());

  it('the local run waits at its question; `webrun-sfn answer` finds it in the (mocked) history and resumes it', async () => {
    emulator.enqueueTasks({ outcome: 'completed' }, { outcome: 'completed', questions: ['Which delivery slot?'], pendingPolls: 1 });
    let answerRun: Run | undefined;
    const summary = await runLocalWorkflow({
      input: { session: { guardrails: { ask: { timeoutSeconds: 240 } } }, tasks: [{ taskDetails: 'Fill the cart' }, { taskDetails: 'Check out' }] },
      baseUrl: emulator.url, apiKey: API_KEY, waitScale: 0.01,
      // Step Functions, as far as the CLI can tell: the history shows the waiting state and its token, and
      // SendTaskSuccess with that token delivers its output to the waiting state.
      onQuestion: (q) => new Promise<PersonsAnswer | 'stop' | undefined>((resolve) => {
        const token = `token-${randomUUID()}`;
        sfn.on(GetExecutionHistoryCommand, { executionArn: EXECUTION_ARN }).resolves({ events: waitingHistory(q.taskIndex, q.question, token) });
        sfn.on(SendTaskSuccessCommand).callsFake((input: { taskToken: string; output: string }) => {
          if (input.taskToken !== token) throw Object.assign(new Error('Invalid token'), { name: 'InvalidToken' });
          resolve(JSON.parse(input.output) as PersonsAnswer);
          return {};
        });
        void cli(['answer', EXECUTION_ARN, 'Saturday morning']).then((r) => (answerRun = r));
      }),
    });
    expect(answerRun?.code).toBe(0);
    expect(summary.status, JSON.stringify(summary.error)).toBe('SUCCEEDED');
    expect(summary.output!.tasks[1].guardrails).toEqual([{ question: 'Which delivery slot?', answeredBy: 'person' }]);
    expect(emulator.ledger({ reveal: true }).sessions[0].tasks[1].answers).toEqual([{ question: 'Which delivery slot?', answer: 'Saturday morning', newState: 'resume' }]);
    expect(emulator.ledger().sessions[0].terminateCalls).toBe(1);
  });
});
