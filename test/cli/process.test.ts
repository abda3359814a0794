/**
 * What the commands read from the process: the terminal question (a guardrail question asked of a person by the
 * local command), where what a person types is the answer and Ctrl-C stops the run rather than leaving the question
 * paused; stdin, whose read a stop ends at once; and the signals and parent process that stop a run, or quit it.
 */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { askOnTerminal, readStream, stopControl, watchLaunchers, type StopOptions } from '../../cli/process';
import type { ProcInfo, ProcReader } from '../../local/emulator/parent-watch';

function terminal() {
  const input = new PassThrough();
  const output = new PassThrough();
  let shown = '';
  output.on('data', (chunk: Buffer) => (shown += chunk.toString()));
  return { input, output, onInterrupt: vi.fn(), shown: () => shown };
}

const never = new Promise<void>(() => {});

describe('askOnTerminal', () => {
  it('resolves with the line the person typed', async () => {
    const t = terminal();
    const answer = askOnTerminal('your answer: ', never, t);
    await new Promise(setImmediate);
    t.input.write('the business account\r');
    await expect(answer).resolves.toBe('the business account');
    expect(t.shown()).toContain('your answer: ');
    expect(t.onInterrupt).not.toHaveBeenCalled();
  });

  it('Ctrl-C at the question stops the run (onInterrupt) and ends the question, and a line typed after it is not an answer', async () => {
    const t = terminal();
    const answer = askOnTerminal('your answer: ', never, t);
    await new Promise(setImmediate);
    t.input.write('\x03');
    await expect(answer).resolves.toBeUndefined();
    expect(t.onInterrupt).toHaveBeenCalledTimes(1);
    t.input.write('yes\r');
    expect(t.onInterrupt).toHaveBeenCalledTimes(1);
  });

  it('ends with no answer when the question is cancelled (its timeout, the end of the run)', async () => {
    const t = terminal();
    let cancel!: () => void;
    const answer = askOnTerminal('your answer: ', new Promise<void>((resolve) => (cancel = resolve)), t);
    await new Promise(setImmediate);
    cancel();
    await expect(answer).resolves.toBeUndefined();
    expect(t.onInterrupt).not.toHaveBeenCalled();
  });
});

describe('readStream (stdin for an input given as -)', () => {
  it('returns all of the text, a character split across chunks included', async () => {
    const stream = new PassThrough();
    const read = readStream(stream);
    const bytes = Buffer.from('{"taskDetails":"café"}');
    stream.write(bytes.subarray(0, 19));
    stream.end(bytes.subarray(19));
    await expect(read).resolves.toBe('{"taskDetails":"café"}');
  });

  it('a stop ends the read at once with an error, though the writer never finishes', async () => {
    const stream = new PassThrough();
    const controller = new AbortController();
    const read = readStream(stream, controller.signal);
    stream.write('{"tasks":');
    controller.abort();
    await expect(read).rejects.toThrow('interrupted before the input was read; nothing was started');
    expect(stream.destroyed).toBe(true);
  });
});

describe('stopControl (signals and the parent process: stop the run, or quit it at once)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A control whose parent watch the test fires, as often as a watch that is never cleared would. */
  function control(extra: Partial<StopOptions> = {}) {
    let parentGone: (reason: string) => void = () => {};
    const abort = vi.fn();
    const quit = vi.fn();
    const lines: string[] = [];
    const stops = stopControl({
      abort,
      quit,
      write: (text) => lines.push(text),
      note: 'terminating the session',
      watchParent: (onGone) => {
        parentGone = onGone;
        return { stop() {} };
      },
      ...extra,
    });
    return { stops, abort, quit, lines, parentGone: (reason = 'process 100 exited') => parentGone(reason) };
  }

  it('a closed terminal (SIGHUP to the group, the shell resending it, then the shell gone) stops the run once and never quits it', () => {
    vi.useFakeTimers();
    const c = control();
    c.stops.signal('SIGHUP');
    c.stops.signal('SIGHUP');
    c.parentGone();
    vi.advanceTimersByTime(300);
    c.stops.signal('SIGHUP');
    c.parentGone();
    c.parentGone();
    expect(c.abort).toHaveBeenCalledTimes(1);
    expect(c.quit).not.toHaveBeenCalled();
  });

  it('the parent going away stops the run once: the watch noticing it again is not a second signal', () => {
    const c = control();
    c.parentGone();
    c.parentGone();
    c.parentGone();
    expect(c.abort).toHaveBeenCalledTimes(1);
    expect(c.quit).not.toHaveBeenCalled();
    expect(c.lines.join('')).toContain('the parent process has gone (process 100 exited), terminating the session');
  });

  it('`kill -TERM` of the npm start group: the SIGTERM racing the parent\'s death is not the person\'s "quit now"', () => {
    vi.useFakeTimers();
    // The parent is seen gone first, the signal lands right after ...
    const first = control();
    first.parentGone();
    vi.advanceTimersByTime(200);
    first.stops.signal('SIGTERM');
    expect(first.quit).not.toHaveBeenCalled();
    // ... or the signal first, then the parent: one stop either way.
    const second = control();
    second.stops.signal('SIGTERM');
    second.parentGone();
    vi.advanceTimersByTime(200);
    second.stops.signal('SIGTERM');
    expect(second.quit).not.toHaveBeenCalled();
    expect([first.abort.mock.calls.length, second.abort.mock.calls.length]).toEqual([1, 1]);
  });

  it('a second Ctrl-C by the person quits at once with 130, and the first one stopped the run', () => {
    const c = control();
    c.stops.signal('SIGINT');
    expect(c.abort).toHaveBeenCalledTimes(1);
    expect(c.quit).not.toHaveBeenCalled();
    expect(c.lines.join('')).toContain('interrupted (SIGINT), terminating the session (send it again to quit now)');
    c.stops.signal('SIGINT');
    expect(c.quit).toHaveBeenCalledWith(130);
  });

  it('after the parent went away, the person can still quit: two Ctrl-C once the hang-up is over', () => {
    vi.useFakeTimers();
    const c = control();
    c.parentGone();
    vi.advanceTimersByTime(5_000);
    c.stops.signal('SIGINT');
    expect(c.quit).not.toHaveBeenCalled();
    c.stops.signal('SIGINT');
    expect(c.quit).toHaveBeenCalledWith(130);
    expect(c.abort).toHaveBeenCalledTimes(1);
  });

  it('a SIGKILLed `npm start` stops the run, though the `sh -c` it ran the command under lives on (re-parented)', () => {
    vi.useFakeTimers();
    // runner <- sh -c (200) <- npm (100) <- the person's shell (50) <- init
    const procs = new Map<number, ProcInfo>([
      [200, { ppid: 100, start: 's' }],
      [100, { ppid: 50, start: 'n' }],
      [50, { ppid: 1, start: 'b' }],
    ]);
    const read: ProcReader = (pids) => new Map(pids.flatMap((pid) => (procs.has(pid) ? [[pid, procs.get(pid)!] as const] : [])));
    const c = control({ watchParent: (onGone) => watchLaunchers(onGone, { read, from: 200 }) });
    vi.advanceTimersByTime(5_000);
    expect(c.abort).not.toHaveBeenCalled();
    procs.delete(100);
    procs.set(200, { ppid: 1, start: 's' });
    vi.advanceTimersByTime(5_000);
    expect(c.abort).toHaveBeenCalledTimes(1);
    expect(c.quit).not.toHaveBeenCalled();
    expect(c.lines.join('')).toContain('the parent process has gone (process 200 lost its parent 100), terminating the session');
  });
});
