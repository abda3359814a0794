/**
 * How a batch's progress is shown: a live bar on a terminal (cli-progress: done, failed, running, rate, time
 * left), else one line per finished item (a log, a CI job), and a final count either way. Used by the local batch
 * (`npm start -- --batch`) and by `webrun-sfn batch status --follow` for a deployed batch.
 */
import { SingleBar } from 'cli-progress';

/** Where the bar is drawn: a terminal (stderr in the CLI). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

/** Counts of a batch at a moment. */
export interface BatchCounts {
  total: number;
  succeeded: number;
  failed: number;
  running: number;
  /** Stopped while running (aborted or timed out), deployed or local. */
  aborted?: number;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The final count, one line. */
export function finalCount(counts: BatchCounts, wallMs: number): string {
  const done = counts.succeeded + counts.failed + (counts.aborted ?? 0);
  const notRun = counts.total - done - counts.running;
  const parts = [`${counts.succeeded} succeeded`, `${counts.failed} failed`];
  if (counts.aborted) parts.push(`${counts.aborted} stopped`);
  if (notRun > 0) parts.push(`${notRun} not started`);
  return `${done}/${counts.total} items done: ${parts.join(', ')} (${seconds(wallMs)}, ${(done / Math.max(wallMs / 1000, 0.001)).toFixed(1)} items/s)`;
}

/** A live bar, redrawn as counts change (and a few times a second for the rate and time left). */
export class TerminalProgress {
  private readonly bar: SingleBar;
  private readonly startedAt = Date.now();
  private stopped = false;

  constructor(stream: ProgressStream, total: number) {
    this.bar = new SingleBar({
      stream: stream as unknown as NodeJS.WritableStream,
      format: ' {bar} {value}/{total} done | {failed} failed | {running} running | {rate} items/s | {eta_formatted} left',
      barsize: 24,
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
      fps: 5,
    });
    this.bar.start(total, 0, { failed: 0, running: 0, rate: '0.0' });
  }

  update(counts: BatchCounts): void {
    if (this.stopped) return;
    const done = counts.succeeded + counts.failed + (counts.aborted ?? 0);
    const rate = done / Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    if (this.bar.getTotal() !== counts.total) this.bar.setTotal(counts.total);
    this.bar.update(done, { failed: counts.failed, running: counts.running, rate: rate.toFixed(1) });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar.stop();
  }
}
