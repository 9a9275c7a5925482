import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * One pino logger for the host (level from STREAMPLUG_LOG_LEVEL, default info). On a terminal the
 * lines are pretty-printed (pino-pretty, in this thread: no worker); piped or redirected they stay
 * JSON lines for machines. STREAMPLUG_LOG_FORMAT=json|pretty forces one.
 */
export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.STREAMPLUG_LOG_LEVEL ?? 'info';
  if (opts.destination) return pino({ level }, opts.destination as pino.DestinationStream);
  const format = process.env.STREAMPLUG_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (format === 'pretty') return pino({ level }, pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  return pino({ level });
}

export type { Logger };
