/**
 * One started rule: its compiled runtime, its sinks (each behind F's SinkRunner) and the timer that
 * closes time windows when no row arrives. Rows come from a SourceHub via push().
 */
import type { Logger } from 'pino';
import type { RuleRuntime } from '../engine/index.js';
import type { Row, SinkRunner } from '../connectors/index.js';
import type { Subscriber } from './source-hub.js';

export interface SinkSlot {
  type: string;
  runner: SinkRunner;
}

/**
 * A file sink without a template writes one line per row, so a batch and its rows one by one give the
 * same bytes: it takes whole batches. Any other sink gets one message per row from a rule without a
 * window, as eKuiper sends them, however the source batched the rows.
 */
function takesBatches(s: SinkSlot): boolean {
  return s.type.toLowerCase() === 'file' && s.runner.options.dataTemplate === undefined;
}

const ignore = () => undefined;

export class RunningRule implements Subscriber {
  private timer?: NodeJS.Timeout;
  private timerAt?: number;
  /** Errors thrown out of the runtime itself (it counts its own stage errors). */
  pushErrors = 0;

  constructor(
    readonly runtime: RuleRuntime,
    readonly sinks: SinkSlot[],
    private readonly now: () => number,
    private readonly log?: Logger,
  ) {
    // A window's result is one message; without a window each row is its own message.
    this.whole = sinks.map((s) => runtime.windowed || takesBatches(s));
    runtime.onResult = (rows) => this.deliver(rows);
  }

  private readonly whole: boolean[];

  private deliver(rows: Row[]): void {
    // The runner counts and reports its own failures; after close it refuses, which is fine.
    for (let i = 0; i < this.sinks.length; i++) {
      const runner = this.sinks[i].runner;
      if (this.whole[i] || rows.length === 1) runner.collect(rows).catch(ignore);
      else for (const r of rows) runner.collect([r]).catch(ignore);
    }
  }

  push(rows: Row[], ts: number): void {
    const rt = this.runtime;
    if (rt.closed) return;
    try {
      rt.push(rows, ts);
    } catch (e) {
      this.pushErrors++;
      this.log?.warn({ rule: rt.id, err: (e as Error).message }, 'rule push failed');
    }
    if (rt.windowed) this.schedule();
  }

  /** Arms the timer for the runtime's next window deadline, if it moved. */
  schedule(): void {
    const rt = this.runtime;
    const d = rt.closed ? undefined : rt.nextDeadline();
    if (d === undefined) {
      this.clearTimer();
      return;
    }
    if (this.timer && this.timerAt === d) return;
    this.clearTimer();
    this.timerAt = d;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      if (rt.closed) return;
      try {
        rt.tick(this.now());
      } catch (e) {
        this.log?.warn({ rule: rt.id, err: (e as Error).message }, 'rule tick failed');
      }
      this.schedule();
    }, Math.max(0, d - this.now()));
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
  }

  /** Stops the timer, closes the runtime (plugin instances), then drains and closes the sinks. */
  async close(): Promise<void> {
    this.clearTimer();
    this.runtime.close();
    await Promise.all(this.sinks.map((s) => s.runner.close().catch((e: unknown) => this.log?.warn({ rule: this.runtime.id, sink: s.type, err: (e as Error).message }, 'sink close failed'))));
  }
}
