/**
 * One started rule: its compiled runtime, its sinks (each behind F's SinkRunner) and the timer that
 * closes time windows when no row arrives. Rows come from a SourceHub via push().
 *
 * Fast path: a rule that passes rows through untouched (`SELECT *` with no WHERE, window, grouping,
 * ordering or limit) and whose sinks all take JSON lines as they are accepts batches still encoded
 * (pushEncoded): they go to the sinks without being decoded. The engine's source and project
 * counters include those rows (metrics()), and fastPath counts them.
 */
import type { Logger } from 'pino';
import type { OperatorMetrics, RuleRuntime, RuleStateSnapshot, SelectStatement } from '../engine/index.js';
import type { WindowSnapshot } from '../engine/window-checkpoint.js';
import type { ConnectorStatus, EncodedBatch, Row, SinkRunner } from '../connectors/index.js';
import { RuleHealth } from './health.js';
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
  return (s.type.toLowerCase() === 'file' && s.runner.options.dataTemplate === undefined) || s.runner.acceptsEncoded();
}

/** `SELECT * FROM s` and nothing else: every row leaves as it came. */
export function passesRowsThrough(s: SelectStatement): boolean {
  return (
    s.fields.length === 1 && s.fields[0].expr.kind === 'star' && s.where === undefined && s.groupBy.length === 0 &&
    s.window === undefined && s.having === undefined && s.orderBy.length === 0 && s.limit === undefined
  );
}

/** Where and how often a rule's plugin function state is checkpointed. */
export interface CheckpointOptions {
  /** Milliseconds between checkpoints while running; 0: only when the rule stops. */
  intervalMs: number;
  save(state: RuleStateSnapshot): void;
  /** With qos >= 1: where the window's rows go (window-checkpoint.ts). */
  saveWindow?(s: WindowSnapshot): void;
}

/** Same call sites, keys and bytes. */
function sameState(a: RuleStateSnapshot, b: RuleStateSnapshot): boolean {
  const sites = Object.keys(a);
  if (sites.length !== Object.keys(b).length) return false;
  return sites.every((site) => {
    const x = a[site];
    const y = b[site];
    if (!y || Object.keys(x).length !== Object.keys(y).length) return false;
    return Object.entries(x).every(([k, v]) => {
      const w = y[k];
      return w !== undefined && w.length === v.length && Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.length), Buffer.from(w.buffer, w.byteOffset, w.length)) === 0;
    });
  });
}

export interface FastPathStatus {
  /** The rule takes encoded batches now (pass-through SQL, every sink takes JSON lines). */
  eligible: boolean;
  /** Rows and batches that went from the source to the sinks still encoded. */
  rows: number;
  batches: number;
}

const ignore = () => undefined;

export class RunningRule implements Subscriber {
  private timer?: NodeJS.Timeout;
  private timerAt?: number;
  /** Errors thrown out of the runtime itself (it counts its own stage errors). */
  pushErrors = 0;
  private readonly passthrough: boolean;
  private fastRows = 0;
  private fastBatches = 0;
  private checkpointTimer?: NodeJS.Timeout;
  private checkpointing = false;
  /** When a checkpoint was last written (ms since the epoch). */
  checkpointAt?: number;
  private savedWindow = -1;
  /** What was last saved (or restored): an unchanged state is not written again. */
  private savedState?: RuleStateSnapshot;

  constructor(
    readonly runtime: RuleRuntime,
    readonly sinks: SinkSlot[],
    private readonly now: () => number,
    private readonly log?: Logger,
    private readonly checkpoint?: CheckpointOptions,
  ) {
    // A window's result is one message; without a window each row is its own message.
    this.whole = sinks.map((s) => runtime.windowed || takesBatches(s));
    this.health = new RuleHealth(runtime.id, log);
    sinks.forEach((s, i) => {
      s.runner.onHealth = (ok, reason) => this.health.set(`actions[${i}].${s.type}`, ok, reason);
      s.runner.onFatal = (reason) => this.onFatal?.(`actions[${i}].${s.type}: ${reason}`);
    });
    this.passthrough = passesRowsThrough(runtime.statement) && runtime.rowsPassUnchanged;
    runtime.onResult = (rows) => this.deliver(rows);
  }

  private readonly whole: boolean[];
  /** Told when a part died while running (a sink's fatal error): the service fails the rule. */
  onFatal?: (reason: string) => void;
  /** Whether the source and every sink are connected (status `degraded` when not). */
  readonly health: RuleHealth;

  /** The shared source lost or regained its connection. */
  sourceStatus(s: ConnectorStatus): void {
    const down = s.state === 'error' || s.state === 'reconnecting';
    this.health.set('source', !down, down ? `${s.state}${s.error ? ` (${s.error})` : ''}` : undefined);
  }

  /**
   * Starts the periodic checkpoints (when the rule has plugin state at all). `restored` is the state
   * the runtime was given at start, so an unchanged state is not saved again.
   */
  startCheckpoints(restored?: RuleStateSnapshot): void {
    const cp = this.checkpoint;
    if (!cp || (this.runtime.stateSites.length === 0 && !this.windowCheckpoints())) return;
    this.checkpointing = true;
    this.savedWindow = this.runtime.windowVersion();
    this.savedState = restored;
    if (cp.intervalMs > 0 && !this.checkpointTimer) {
      this.checkpointTimer = setInterval(() => this.saveCheckpoint(), cp.intervalMs);
      this.checkpointTimer.unref();
    }
  }

  private windowCheckpoints(): boolean {
    return this.runtime.windowed && this.checkpoint?.saveWindow !== undefined;
  }

  /** Saves the plugin function state if it changed; a failure is logged and the last checkpoint kept. */
  saveCheckpoint(): void {
    const cp = this.checkpoint;
    const rt = this.runtime;
    if (!cp || !this.checkpointing || rt.closed) return;
    try {
      if (this.windowCheckpoints() && rt.windowVersion() !== this.savedWindow) {
        const v = rt.windowVersion();
        cp.saveWindow!(rt.exportWindow()!);
        this.savedWindow = v;
        this.checkpointAt = Date.now();
      }
      this.wakeCheckpointWaiters();
      if (rt.stateSites.length === 0) return;
      const state = rt.exportState();
      if (this.savedState && sameState(state, this.savedState)) return;
      cp.save(state);
      this.savedState = state;
      this.checkpointAt = Date.now();
    } catch (e) {
      this.log?.warn({ rule: rt.id, err: (e as Error).message }, 'rule checkpoint failed; the last one is kept');
    }
  }

  private deliver(rows: Row[]): void {
    // The runner counts and reports its own failures; after close it refuses, which is fine.
    for (let i = 0; i < this.sinks.length; i++) {
      const runner = this.sinks[i].runner;
      if (this.whole[i] || rows.length === 1) runner.collect(rows).catch(ignore);
      else for (const r of rows) runner.collect([r]).catch(ignore);
    }
  }

  /** Rows of the FROM stream, or of a stream the rule joins (named). */
  push(rows: Row[], ts: number, stream?: string): void {
    const rt = this.runtime;
    if (rt.closed) return;
    try {
      rt.push(rows, ts, stream);
    } catch (e) {
      this.pushErrors++;
      this.log?.warn({ rule: rt.id, err: (e as Error).message }, 'rule push failed');
    }
    if (rt.windowed) this.schedule();
  }

  /** Backpressure: some sink's queue is full under the "block" policy (SinkRunner.saturated()). */
  saturated(): boolean {
    return !this.runtime.closed && this.sinks.some((s) => s.runner.saturated());
  }

  async whenRoom(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.runner.whenRoom()));
  }

  acceptsEncoded(): boolean {
    return this.passthrough && !this.runtime.closed && this.sinks.every((s) => s.runner.acceptsEncoded());
  }

  pushEncoded(batch: EncodedBatch, ts: number): void {
    if (this.runtime.closed) return;
    if (!this.acceptsEncoded()) return this.push(batch.rows(), ts);
    this.fastRows += batch.count;
    this.fastBatches++;
    for (const s of this.sinks) s.runner.collectEncoded(batch).catch(ignore);
  }

  /**
   * The delivery hook (EmitMeta.onDelivered): resolves once the rows pushed so far left through every
   * sink (SinkRunner.settled()), false if one could not confirm them. A windowed rule holds rows in its
   * window, not in a sink: with qos >= 1 it confirms them once a checkpoint holds that window; without,
   * once accepted into the window (a crash then loses the open window; docs/connectors.md).
   */
  async settled(): Promise<boolean> {
    if (this.runtime.closed) return false;
    if (this.runtime.windowed) {
      if (!this.windowCheckpoints() || !this.checkpointing) return true;
      // qos >= 1: the rows are safe once a checkpoint holds the window they went into (and what an
      // ended window gave the sinks is delivered), so an acknowledging source acks only then and a
      // crash before it makes the source send them again.
      const v = this.runtime.windowVersion();
      if (v > this.savedWindow && !(await new Promise<boolean>((wake) => this.checkpointWaiters.push({ version: v, wake })))) return false;
    }
    const all = await Promise.all(this.sinks.map((s) => s.runner.settled()));
    return all.every(Boolean);
  }

  /** settled() calls waiting for a checkpoint holding a window version. */
  private checkpointWaiters: { version: number; wake: (ok: boolean) => void }[] = [];

  private wakeCheckpointWaiters(): void {
    if (this.checkpointWaiters.length === 0) return;
    const closed = this.runtime.closed;
    const keep: typeof this.checkpointWaiters = [];
    for (const w of this.checkpointWaiters) {
      if (w.version <= this.savedWindow) w.wake(true);
      else if (closed) w.wake(false);
      else keep.push(w);
    }
    this.checkpointWaiters = keep;
  }

  fastPath(): FastPathStatus {
    return { eligible: this.acceptsEncoded(), rows: this.fastRows, batches: this.fastBatches };
  }

  /** The engine's operator counters, with the rows of the fast path in source and project. */
  metrics(): OperatorMetrics[] {
    const ops = this.runtime.metrics();
    if (this.fastBatches === 0) return ops;
    for (const op of ops) {
      if (op.name !== 'source' && op.name !== 'project') continue;
      op.recordsIn += this.fastRows;
      op.recordsOut += this.fastRows;
      op.calls += this.fastBatches;
    }
    return ops;
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

  /** Stops the timers, checkpoints the state, closes the runtime (plugin instances), then drains and closes the sinks. */
  async close(): Promise<void> {
    this.clearTimer();
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    this.checkpointTimer = undefined;
    this.saveCheckpoint();
    this.runtime.close();
    this.wakeCheckpointWaiters(); // what the last checkpoint does not hold is not confirmed
    await Promise.all(this.sinks.map((s) => s.runner.close().catch((e: unknown) => this.log?.warn({ rule: this.runtime.id, sink: s.type, err: (e as Error).message }, 'sink close failed'))));
  }
}
