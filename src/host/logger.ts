import pino, { type Logger } from 'pino';

/** One pino logger for the host; JSON lines on stdout (level from STREAMPLUG_LOG_LEVEL, default info). */
export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.STREAMPLUG_LOG_LEVEL ?? 'info';
  return opts.destination ? pino({ level }, opts.destination as pino.DestinationStream) : pino({ level });
}

export type { Logger };
