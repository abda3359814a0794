import { GetExecutionHistoryCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { StateNames } from '../../lambdas/shared/contract';
import { ProgressTracker } from '../../local/progress';
import { HistoryTranslator, newHistoryEvents } from '../../cli/history';
import { EXECUTION_ARN, failedHistory, succeededHistory } from './fixtures';

const sfn = mockClient(SFNClient);
beforeEach(() => sfn.reset());

function translateAll(events = succeededHistory()) {
  const translator = new HistoryTranslator();
  return events.flatMap((e) => translator.translate(e));
}

describe('HistoryTranslator', () => {
  it('turns state entered/exited events into state events with their parsed input and output', () => {
    const events = translateAll().map((t) => t.event);
    expect(events[0]).toEqual({ type: 'entered', state: StateNames.start, at: Date.parse('2030-01-01T09:00:01Z'), input: { input: expect.any(Object) } });
    expect(events[1]).toMatchObject({ type: 'exited', state: StateNames.start, output: { run: { sessionId: 's-1', taskCount: 1 } } });
    expect(events.filter((e) => e.type === 'entered').map((e) => e.state)).toEqual([
      StateNames.start, StateNames.next, StateNames.send, StateNames.next, StateNames.wait, StateNames.poll, StateNames.next, StateNames.terminate, StateNames.succeeded,
    ]);
  });

  it('a failure followed by a new scheduling is a retry; a failure followed by the exit is a catch (not an exit)', () => {
    const events = translateAll(failedHistory()).map((t) => t.event).filter((e) => e.state === StateNames.send);
    expect(events.map((e) => [e.type, e.error])).toEqual([
      ['entered', undefined],
      ['failed', 'Webrun.RateLimited'],
      ['retried', 'Webrun.RateLimited'],
      ['failed', 'Webrun.TaskFailed'],
      ['caught', 'Webrun.TaskFailed'],
    ]);
  });

  it('marks the events whose execution data the history does not hold', () => {
    const translated = translateAll(succeededHistory(false));
    expect(translated.every((t) => t.dataMissing)).toBe(true);
    expect(translated.find((t) => t.event.state === StateNames.send)?.stateType).toBe('Task');
  });

  it('fed to the local ProgressTracker, gives the lines the local runner prints', () => {
    const lines: string[] = [];
    const tracker = new ProgressTracker((l) => lines.push(l));
    for (const t of translateAll()) tracker.handle(t.event);
    expect(lines).toEqual([
      '  session s-1 started (1 task)',
      '  task 1/1 sent: "Open the page"',
      '  task 1/1 pending, polling (at most 15 polls)',
      '  task 1/1 completed in 13.0 s',
      '  session s-1 terminated',
    ]);
  });
});

describe('newHistoryEvents', () => {
  it('reads newest-first pages until it reaches an event already seen, and returns the new ones oldest first', async () => {
    const all = succeededHistory();
    const newest = [...all].reverse();
    sfn.on(GetExecutionHistoryCommand, { nextToken: undefined }).resolves({ events: newest.slice(0, 5), nextToken: 'p2' });
    sfn.on(GetExecutionHistoryCommand, { nextToken: 'p2' }).resolves({ events: newest.slice(5, 10), nextToken: 'p3' });
    const fresh = await newHistoryEvents(new SFNClient({}), EXECUTION_ARN, all.length - 8, 5);
    expect(fresh.map((e) => e.id)).toEqual(all.slice(-8).map((e) => e.id));
    const calls = sfn.commandCalls(GetExecutionHistoryCommand);
    expect(calls).toHaveLength(2);
    expect(calls[0].args[0].input).toEqual({ executionArn: EXECUTION_ARN, reverseOrder: true, maxResults: 5, nextToken: undefined, includeExecutionData: true });
  });

  it('reads the whole history on the first call', async () => {
    const all = succeededHistory();
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [...all].reverse() });
    expect((await newHistoryEvents(new SFNClient({}), EXECUTION_ARN, 0)).map((e) => e.id)).toEqual(all.map((e) => e.id));
  });
});
