/** Memory source: the datasource is a topic filter on the in-process bus (wildcards allowed). */
import type { ConnectorContext, EmitFn, Props, SourceConnector, SourceMetrics, StatusFn } from '../types.js';
import { memoryBus, type MemoryBus } from './bus.js';
import { validateFilter } from '../topic.js';

export class MemorySource implements SourceConnector {
  private unsubscribe?: () => void;
  private readonly m: SourceMetrics = { messagesIn: 0, rowsOut: 0, decodeErrors: 0 };

  constructor(
    readonly filter: string,
    private readonly bus: MemoryBus = memoryBus,
  ) {
    validateFilter(filter);
  }

  async start(emit: EmitFn, onStatus: StatusFn): Promise<void> {
    if (this.unsubscribe) return;
    this.unsubscribe = this.bus.subscribe(this.filter, (rows, topic) => {
      this.m.messagesIn++;
      this.m.rowsOut += rows.length;
      emit(rows, { topic, ts: Date.now() });
    });
    onStatus({ state: 'connected' });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  metrics(): SourceMetrics {
    return { ...this.m };
  }
}

export function createMemorySource(datasource: string, _props: Props, _ctx: ConnectorContext): MemorySource {
  return new MemorySource(datasource);
}
