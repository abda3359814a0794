/**
 * What the commands read from the process: the terminal question (a guardrail question asked of a person by the
 * local command), where what a person types is the answer and Ctrl-C stops the run rather than leaving the question
 * paused; and stdin, whose read a stop ends at once.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { askOnTerminal, readStream } from '../../cli/process';

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
