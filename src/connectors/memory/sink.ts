/** Memory sink: publishes each message to a topic of the in-process bus (property `topic`). */
import type { ConnectorContext, Props, Row, SinkConnector, SinkMessage } from '../types.js';
import { memoryBus, type MemoryBus } from './bus.js';
import { PropReader } from '../props.js';
import { validateTopic } from '../topic.js';
import { decodeJson } from '../decode.js';
import { StreamplugError } from '../../errors.js';

export class MemorySink implements SinkConnector {
  constructor(
    readonly topic: string,
    private readonly bus: MemoryBus = memoryBus,
  ) {
    validateTopic(topic);
  }

  async open(): Promise<void> {}

  async collect(rows: Row[]): Promise<void> {
    this.bus.publish(this.topic, rows);
  }

  async send(msg: SinkMessage): Promise<void> {
    if (msg.text === undefined) return this.collect(Array.isArray(msg.data) ? msg.data : [msg.data]);
    // A template's output crosses the bus as rows, so it must be JSON.
    const res = decodeJson(msg.text);
    if (!res.ok)
      throw new StreamplugError('E_SINK_FAILED', `memory sink "${this.topic}": dataTemplate output is ${res.error}; make the template produce a JSON object or array`);
    return this.collect(res.rows);
  }

  async close(): Promise<void> {}
}

export function createMemorySink(props: Props, _ctx: ConnectorContext): MemorySink {
  return new MemorySink(new PropReader('memory sink', props).requireString('topic'));
}
