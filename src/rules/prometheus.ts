/**
 * GET /metrics: the counters rule status shows, in Prometheus text format, through prom-client.
 *
 * Names follow eKuiper's Prometheus metrics where it has them: `kuiper_<source|op|sink>_<metric>`
 * with labels `rule`, `type` (source, op, sink) and `op` (the stream for a source, the operator name,
 * `<sink type>_<action index>` for a sink). What eKuiper does not have is `streamplug_…`: the rule's
 * status, the sink cache and the source connector. Values are read from the rules at scrape time,
 * so a counter of a restarted rule starts again at 0 (Prometheus' rate() handles the reset).
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { RuleService } from './service.js';
import type { RuleState } from './status.js';

const STATES: RuleState[] = ['running', 'degraded', 'stopped', 'failed', 'starting'];

let processRegistry: Registry | undefined;

/** Process metrics (CPU, memory, event loop), collected once per process. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'streamplug_' });
  }
  return processRegistry;
}

type Labels = { rule: string; type: 'source' | 'op' | 'sink'; op: string };

/** One scrape: a fresh registry filled from every rule's status. */
export async function renderMetrics(rules: RuleService): Promise<{ contentType: string; text: string }> {
  const reg = new Registry();
  const labelNames = ['rule', 'type', 'op'] as const;
  const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers: [reg] });
  const gauge = (name: string, help: string, names: readonly string[] = labelNames) => new Gauge({ name, help, labelNames: names, registers: [reg] });

  const fam = {
    in: {} as Record<string, Counter>,
    out: {} as Record<string, Counter>,
    exc: {} as Record<string, Counter>,
    lat: {} as Record<string, Gauge>,
  };
  for (const t of ['source', 'op', 'sink'] as const) {
    fam.in[t] = counter(`kuiper_${t}_records_in_total`, `Rows received by the ${t}`);
    fam.out[t] = counter(`kuiper_${t}_records_out_total`, `Rows sent on by the ${t}`);
    fam.exc[t] = counter(`kuiper_${t}_exceptions_total`, `Errors in the ${t}`);
    fam.lat[t] = gauge(`kuiper_${t}_process_latency_us`, `Latency of the ${t}'s last call, microseconds`);
  }
  const sinkBuffer = gauge('kuiper_sink_buffer_length', 'Messages waiting in the sink queue');
  const sinkLastInvocation = gauge('kuiper_sink_last_invocation', 'Last send attempt, ms since the epoch');
  const lastExceptionTime = gauge('kuiper_op_last_exception_time', 'Last error of the operator, ms since the epoch');
  const cached = gauge('streamplug_sink_cached', 'Messages in the sink cache (memory and disk)');
  const cachedOnDisk = gauge('streamplug_sink_cached_on_disk', 'Messages of the sink cache on disk');
  const cachedTotal = counter('streamplug_sink_cached_total', 'Messages that went into the sink cache');
  const resent = counter('streamplug_sink_resent_total', 'Messages delivered from the sink cache');
  const dropped = counter('streamplug_sink_dropped_total', 'Messages given up on (retries exhausted, full queue or cache)');
  const droppedRecords = counter('streamplug_sink_dropped_records_total', 'Rows in the messages given up on');
  const connected = gauge('streamplug_sink_connected', '1 while the sink delivers, 0 after a message failed for good');
  const status = gauge('streamplug_rule_status', 'The rule status: 1 for the current one', ['rule', 'status']);
  const degradedSince = gauge('streamplug_rule_degraded_since', 'When the running rule became degraded, ms since the epoch', ['rule']);
  const srcMessages = counter('streamplug_source_messages_in_total', 'Messages the shared source connector received');
  const srcDecode = counter('streamplug_source_decode_errors_total', 'Messages the source could not decode');
  const srcConnected = gauge('streamplug_source_connected', '1 while the source connector is connected');

  for (const summary of rules.listRules()) {
    let st;
    try {
      st = rules.ruleStatus(summary.id);
    } catch {
      continue; // deleted while we scrape
    }
    const rule = st.id;
    for (const s of STATES) status.set({ rule, status: s }, st.status === s ? 1 : 0);
    if (st.degraded) degradedSince.set({ rule }, st.degraded.since);
    const streamName = st.stream;
    for (const op of st.operators) {
      const isSource = op.name === 'source';
      const l: Labels = { rule, type: isSource ? 'source' : 'op', op: isSource ? streamName : op.name };
      fam.in[l.type].inc(l, op.recordsIn);
      fam.out[l.type].inc(l, op.recordsOut);
      fam.exc[l.type].inc(l, op.exceptions);
      fam.lat[l.type].set(l, op.lastLatencyUs);
      if (op.lastError) lastExceptionTime.set(l, op.lastError.at);
    }
    for (const s of st.sinks) {
      const l: Labels = { rule, type: 'sink', op: `${s.type}_${s.action}` };
      fam.in.sink.inc(l, s.recordsIn);
      fam.out.sink.inc(l, s.recordsOut);
      fam.exc.sink.inc(l, s.exceptions);
      fam.lat.sink.set(l, 0);
      sinkBuffer.set(l, s.buffered);
      if (s.lastInvocation !== undefined) sinkLastInvocation.set(l, s.lastInvocation);
      cached.set(l, s.cached);
      cachedOnDisk.set(l, s.cachedOnDisk);
      cachedTotal.inc(l, s.cachedTotal);
      resent.inc(l, s.resent);
      dropped.inc(l, s.droppedMessages);
      droppedRecords.inc(l, s.droppedRecords);
      connected.set(l, s.connected ? 1 : 0);
    }
    if (st.source) {
      const l: Labels = { rule, type: 'source', op: st.source.stream };
      srcMessages.inc(l, st.source.messagesIn ?? 0);
      srcDecode.inc(l, st.source.decodeErrors ?? 0);
      srcConnected.set(l, st.source.state === 'connected' ? 1 : 0);
    }
  }
  const merged = Registry.merge([processMetrics(), reg]);
  return { contentType: merged.contentType, text: await merged.metrics() };
}
