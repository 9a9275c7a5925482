/**
 * What GET /rules/{id}/status returns: the state, structured counters (source connector, engine
 * operators, sinks) and the same counters as eKuiper's flat metric keys
 * (`source_demo_0_records_in_total`, `op_filter_0_exceptions_total`, `sink_mqtt_0_0_records_out_total`, …)
 * so tools written for eKuiper read them.
 */
import type { OperatorMetrics } from '../engine/index.js';
import type { SinkMetrics } from '../connectors/index.js';
import type { SourceReport } from './source-hub.js';
import type { FastPathStatus } from './running-rule.js';

import type { Degraded } from './health.js';

/** `degraded`: running, but its source or a sink is disconnected (see `degraded` for why and since when). */
export type RuleState = 'running' | 'degraded' | 'stopped' | 'failed' | 'starting';

export interface RuleError {
  code: string;
  message: string;
  /** ms since the epoch */
  at: number;
}

export interface SinkReport extends SinkMetrics {
  action: number;
  type: string;
}

export interface RuleStatus {
  id: string;
  /** The stream the rule reads (FROM). */
  stream: string;
  status: RuleState;
  /** Why the rule is failed (or how it was stopped), in one line. */
  message?: string;
  error?: RuleError;
  startedAt?: number;
  /** When the rule's state (plugin functions, window rows with qos >= 1) was last checkpointed. */
  checkpointAt?: number;
  /** restartStrategy: tries made since the last good start, and when the next one runs. */
  restart?: { tries: number; nextAt?: number };
  /** Present while the status is `degraded`. */
  degraded?: Degraded;
  /** The shared source connector of the rule's stream while the rule runs. */
  source?: SourceReport;
  /** The pass-through fast path of the current (or last) run: rows that crossed still encoded. */
  fastPath?: FastPathStatus;
  /** Engine operators of the current (or last) run, in pipeline order. */
  operators: OperatorMetrics[];
  sinks: SinkReport[];
  /** eKuiper-style flat metrics of the same counters. */
  metrics: Record<string, number | string>;
}

export function flatMetrics(stream: string, operators: OperatorMetrics[], sinks: SinkReport[]): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  const put = (prefix: string, m: { recordsIn: number; recordsOut: number; exceptions: number }, latencyUs: number, lastError?: string, lastErrorAt?: number, lastInvocation?: number) => {
    out[`${prefix}_records_in_total`] = m.recordsIn;
    out[`${prefix}_records_out_total`] = m.recordsOut;
    out[`${prefix}_exceptions_total`] = m.exceptions;
    out[`${prefix}_process_latency_us`] = latencyUs;
    out[`${prefix}_last_exception`] = lastError ?? '';
    out[`${prefix}_last_exception_time`] = lastErrorAt ?? 0;
    if (lastInvocation !== undefined) out[`${prefix}_last_invocation`] = lastInvocation;
  };
  for (const op of operators) {
    const prefix = op.name === 'source' ? `source_${stream}_0` : `op_${op.name}_0`;
    put(prefix, op, op.lastLatencyUs, op.lastError?.message, op.lastError?.at);
  }
  for (const s of sinks) {
    put(`sink_${s.type}_${s.action}_0`, s, 0, s.lastError, s.lastErrorAt, s.lastInvocation);
    out[`sink_${s.type}_${s.action}_0_buffer_length`] = s.buffered;
  }
  return out;
}
