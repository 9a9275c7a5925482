/** Nop sink: accepts and discards everything (for benchmarks and rules kept only for their metrics). */
import type { ConnectorContext, Props, Row, SinkConnector } from '../types.js';

export class NopSink implements SinkConnector {
  received = 0;
  async open(): Promise<void> {}
  async collect(rows: Row[]): Promise<void> {
    this.received += rows.length;
  }
  async close(): Promise<void> {}
}

export function createNopSink(_props: Props, _ctx: ConnectorContext): NopSink {
  return new NopSink();
}
