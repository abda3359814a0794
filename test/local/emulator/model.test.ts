/** Sessions and tasks: the session limit and maxOpen, guardrail questions answered in turn. */
import { describe, expect, it } from 'vitest';
import { validateTaskBehaviour } from '../../../local/emulator';
import { emulatorPerTest, obj, sleep, str } from './harness';

const emulator = emulatorPerTest();

describe.concurrent('the model (tests run concurrently, each with its own emulator)', () => {
  describe('session limit (maxSessions)', () => {
    it('answers 429 SESSION_LIMIT_REACHED while N sessions are open, for start-session and run-task; a terminate frees a slot', async () => {
      const c = await emulator.start({ maxSessions: 2 });
      const a = await c.openSession();
      await c.openSession();
      const refused = await c.startSession();
      expect(refused.status).toBe(429);
      expect(refused.json).toEqual({ success: false, code: 'SESSION_LIMIT_REACHED', error: expect.stringContaining('2 sessions') });
      const runTask = await c.call('POST', '/start/run-task', { taskDetails: 'one-off' });
      expect(runTask.status).toBe(429);
      expect(runTask.json.code).toBe('SESSION_LIMIT_REACHED');
      expect(c.emu.ledger()).toMatchObject({ created: 2, open: 2, maxOpen: 2 });

      expect((await c.terminate(a)).status).toBe(200);
      expect((await c.startSession()).status).toBe(200);
      expect(c.emu.ledger()).toMatchObject({ created: 3, open: 2, maxOpen: 2 });
      expect(c.emu.ledger().requests.map((r) => `${r.endpoint} ${r.status}`)).toEqual(['start 200', 'start 200', 'start 429', 'run-task 429', 'terminate 200', 'start 200']);
    });

    it('an expired session no longer counts against the limit', async () => {
      // 300 ms: the refused start must come before the first session idles out, even on a loaded machine.
      const c = await emulator.start({ maxSessions: 1, sessionIdleMs: 300 });
      await c.openSession();
      expect((await c.startSession()).status).toBe(429);
      await sleep(330);
      expect((await c.startSession()).status).toBe(200);
      expect(c.emu.ledger()).toMatchObject({ created: 2, expired: 1, open: 1, maxOpen: 1 });
    });

    it('maxOpen is the most sessions open at once, not the number created; run-task counts while it runs', async () => {
      const c = await emulator.start();
      const ids = [await c.openSession(), await c.openSession(), await c.openSession()];
      for (const id of ids.slice(0, 2)) await c.terminate(id);
      await c.openSession();
      expect(c.emu.ledger()).toMatchObject({ created: 4, open: 2, maxOpen: 3 });
      await c.call('POST', '/start/run-task', { taskDetails: 'one-off' });
      expect(c.emu.ledger()).toMatchObject({ created: 5, open: 2, maxOpen: 3 });
      await c.openSession();
      await c.call('POST', '/start/run-task', { taskDetails: 'one-off' });
      expect(c.emu.ledger()).toMatchObject({ open: 3, maxOpen: 4 });
    });
  });

  describe('guardrail questions', () => {
    const question = (value: string): unknown => ({ type: 'guardrail_trigger', data: { type: 'human_input_needed', value } });

    it('stops at each question in turn; resume goes on to the next, pending again for its pendingPolls; answers are recorded', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'completed', questions: ['Which size?', 'Confirm the purchase?'], pendingPolls: 1 });
      const sid = await c.openSession();
      const t = await c.task(sid, 'Buy a keyboard');

      expect((await c.poll(sid, t)).json.pending).toBe(true);
      expect((await c.poll(sid, t)).json).toEqual(question('Which size?'));
      expect((await c.poll(sid, t)).json).toEqual(question('Which size?')); // waits for an answer
      expect(c.emu.ledger().sessions[0].tasks[0].status).toBe('guardrail');

      const resumed = await c.answer(sid, 'resume', 'Full size');
      expect(resumed.json).toMatchObject({ success: true, sessionId: sid, taskId: t, pending: true });
      expect((await c.poll(sid, t)).json.pending).toBe(true);
      expect((await c.poll(sid, t)).json).toEqual(question('Confirm the purchase?'));
      await c.answer(sid, 'resume', 'yes');
      expect((await c.poll(sid, t)).json.pending).toBe(true);
      expect((await c.poll(sid, t)).json.type).toBe('task_completed');

      expect(c.emu.ledger({ reveal: true }).sessions[0].tasks[0]).toMatchObject({
        status: 'completed',
        outcome: 'completed',
        answers: [
          { question: 'Which size?', answer: 'Full size', newState: 'resume' },
          { question: 'Confirm the purchase?', answer: 'yes', newState: 'resume' },
        ],
      });
    });

    it("outcome 'guardrail' with questions completes after the last answer; the single `question` form is recorded too", async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'guardrail', questions: ['Q1', 'Q2'] }, { outcome: 'guardrail', question: 'Only one?' });
      const sid = await c.openSession();
      const t = await c.task(sid, 'two questions');
      for (const q of ['Q1', 'Q2']) {
        expect((await c.poll(sid, t)).json).toEqual(question(q));
        await c.answer(sid, 'resume', `answer to ${q}`);
      }
      expect((await c.poll(sid, t)).json.type).toBe('task_completed');
      const u = await c.task(sid, 'one question');
      expect((await c.poll(sid, u)).json).toEqual(question('Only one?'));
      await c.answer(sid, 'resume', 'yes');
      expect((await c.poll(sid, u)).json.type).toBe('task_completed');
      expect(c.emu.ledger().sessions[0].tasks.map((x) => x.answers.map((a) => a.question))).toEqual([['Q1', 'Q2'], ['Only one?']]);
    });

    it('newState stop cancels the task at its question: failed "stopped", recorded; later questions are never asked', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'completed', questions: ['Q1', 'Q2', 'Q3'] });
      const sid = await c.openSession();
      const t = await c.task(sid, 'x');
      await c.poll(sid, t);
      await c.answer(sid, 'resume', 'go on');
      expect((await c.poll(sid, t)).json).toEqual(question('Q2'));
      const stopped = await c.answer(sid, 'stop', 'no thanks');
      expect(stopped.json).toEqual({ success: true, sessionId: sid, taskId: t, message: 'Task stopped' });
      expect((await c.poll(sid, t)).json).toEqual({ success: true, sessionId: sid, taskId: t, status: 'failed', error: 'stopped' });
      expect((await c.answer(sid, 'resume', 'too late')).status).toBe(400); // nobody is waiting any more
      expect(c.emu.ledger({ reveal: true }).sessions[0].tasks[0].answers).toEqual([
        { question: 'Q1', answer: 'go on', newState: 'resume' },
        { question: 'Q2', answer: 'no thanks', newState: 'stop' },
      ]);
    });

    it("state/stop stops a task waiting at a question; a 'failed' outcome fails after its questions", async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'completed', questions: ['Q'] }, { outcome: 'failed', questions: ['Sure?'], reason: 'Out of stock' });
      const sid = await c.openSession();
      const t = await c.task(sid, 'x');
      await c.poll(sid, t);
      await c.send(sid, { actionType: 'state', newState: 'stop' });
      expect((await c.poll(sid, t)).json).toMatchObject({ status: 'failed', error: 'stopped' });
      const u = await c.task(sid, 'y');
      expect((await c.poll(sid, u)).json).toEqual(question('Sure?'));
      await c.answer(sid, 'resume', 'yes');
      expect((await c.poll(sid, u)).json).toMatchObject({ status: 'failed', error: 'Out of stock' });
    });

    it('after an answer the task is pending again for its pendingMs, counted from the answer', async () => {
      const c = await emulator.start();
      c.emu.enqueueTasks({ outcome: 'completed', questions: ['Q'], pendingMs: 300 });
      const sid = await c.openSession();
      const t = await c.task(sid, 'x');
      await sleep(320);
      expect((await c.poll(sid, t)).json).toEqual(question('Q'));
      await c.answer(sid, 'resume', 'a');
      expect((await c.poll(sid, t)).json.pending).toBe(true);
      await sleep(320);
      expect((await c.poll(sid, t)).json.type).toBe('task_completed');
    });

    it('an inline task stops at its first question in the send-message answer', async () => {
      const c = await emulator.start({ pendingPolls: 0 });
      c.emu.enqueueTasks({ outcome: 'completed', questions: ['First?', 'Second?'], inline: true });
      const sid = await c.openSession();
      const r = await c.newTask(sid, 'x');
      expect(obj(r.json.result)).toEqual(question('First?'));
      await c.answer(sid, 'resume', 'a');
      expect((await c.poll(sid, str(r.json.taskId))).json).toEqual(question('Second?'));
    });

    it('validates questions', () => {
      expect(() => validateTaskBehaviour({ outcome: 'guardrail', questions: [] })).toThrow(/at least one question/);
      // A timer longer than Node's longest fires at once: such a wait is refused, not turned into none.
      expect(() => validateTaskBehaviour({ outcome: 'completed', pendingMs: 3_000_000_000 })).toThrow('pendingMs must be at most 2147483647 ms (a longer timer fires at once), got 3000000000');
      expect(() => validateTaskBehaviour({ outcome: 'completed', doorbell: { delayMs: 3_000_000_000 } })).toThrow(/doorbell.delayMs must be at most 2147483647 ms/);
      // A misspelt field is refused by name, not ignored (the run would use the default question).
      expect(() => validateTaskBehaviour({ outcome: 'guardrail', quesion: 'Which size?' })).toThrow(/^"quesion" is not a field of a task behaviour \(its fields: outcome, /);
      expect(() => validateTaskBehaviour({ outcome: 'completed', questions: [''] })).toThrow(/non-empty strings/);
      expect(() => validateTaskBehaviour({ outcome: 'completed', questions: 'Q' })).toThrow(/questions/);
      expect(() => validateTaskBehaviour({ outcome: 'guardrail', question: 'a', questions: ['b'] })).toThrow(/not both/);
      expect(validateTaskBehaviour({ outcome: 'completed', questions: [] })).toEqual({ outcome: 'completed', questions: [] });
    });

    it('a behaviour without an outcome completes, as an unscripted task does; data must be an object, and says so', () => {
      expect(validateTaskBehaviour({ data: { title: 'Kettle' }, pendingPolls: 1 })).toEqual({ outcome: 'completed', data: { title: 'Kettle' }, pendingPolls: 1 });
      expect(() => validateTaskBehaviour({ outcome: 'stuk' })).toThrow(/^outcome must be one of completed/);
      expect(() => validateTaskBehaviour({ data: [1, 2] })).toThrow(/data must be an object \(the documented shape/);
      // What only one outcome uses is refused with another, the default included: the script would pass silently.
      expect(() => validateTaskBehaviour({ question: 'Confirm purchase?' })).toThrow('question is the question of outcome "guardrail" (got outcome "completed")');
      expect(() => validateTaskBehaviour({ outcome: 'stuck', reason: 'Out of stock' })).toThrow('reason is the reason of outcome "failed" (got outcome "stuck")');
    });
  });
});
