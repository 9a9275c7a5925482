/**
 * Rule health: a running rule whose source or one of whose sinks has lost its connection is
 * `degraded`, with the reason and since when. The outage is logged once at warn when the first
 * part goes down, and the recovery once at info when the last part is back, however many
 * reconnect attempts or failed sends happen in between.
 */
import type { Logger } from 'pino';

export interface Degraded {
  /** Every part that is down, like `source mqtt in/rows: reconnecting` or `actions[0].rest: ECONNREFUSED`. */
  reason: string;
  /** ms since the epoch when the first of them went down. */
  since: number;
}

export class RuleHealth {
  private readonly down = new Map<string, string>();
  private since?: number;

  constructor(
    readonly ruleId: string,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records one part's state; `part` is a stable name (`source`, `actions[1].rest`). */
  set(part: string, ok: boolean, reason?: string): void {
    const was = this.down.size > 0;
    if (ok) this.down.delete(part);
    else this.down.set(part, reason ? `${part}: ${reason}` : part);
    const is = this.down.size > 0;
    if (!was && is) {
      this.since = this.now();
      this.log?.warn({ rule: this.ruleId, reason: this.reason() }, `rule ${this.ruleId} is degraded: ${this.reason()}`);
    } else if (was && !is) {
      const ms = this.now() - (this.since ?? this.now());
      this.since = undefined;
      this.log?.info({ rule: this.ruleId, downMs: ms }, `rule ${this.ruleId} recovered after ${ms} ms`);
    }
  }

  private reason(): string {
    return [...this.down.values()].join('; ');
  }

  report(): Degraded | undefined {
    return this.down.size > 0 ? { reason: this.reason(), since: this.since! } : undefined;
  }
}
