/** Log sink: writes every message to a pino logger (the context's, else one on stdout). */
import { pino, type Logger } from 'pino';
import { PropReader } from '../props.js';
import type { ConnectorContext, Props, Row, SinkConnector, SinkMessage } from '../types.js';
import { messageText } from './encode.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

export class LogSink implements SinkConnector {
  private readonly logger: Logger;
  constructor(
    private readonly level: Level,
    private readonly ctx: ConnectorContext,
  ) {
    this.logger = ctx.logger ?? pino({ name: 'streamplug' });
  }

  async open(): Promise<void> {}

  async collect(rows: Row[]): Promise<void> {
    return this.send({ data: rows });
  }

  async send(msg: SinkMessage): Promise<void> {
    this.logger[this.level]({ rule: this.ctx.ruleId, sink: 'log', result: messageText(msg) }, 'sink result');
  }

  async close(): Promise<void> {}
}

export function createLogSink(props: Props, ctx: ConnectorContext): LogSink {
  return new LogSink(new PropReader('log sink', props).oneOf('level', LEVELS, 'info'), ctx);
}
