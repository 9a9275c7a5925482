/**
 * eKuiper's rule option `restartStrategy`: how a rule that failed to start (source, sink or plugin
 * refused) or failed while running (a sink died: service.ts, failAtRunTime) is tried again. Attempt k (0-based) waits min(delay * multiplier^k, maxDelay), spread by
 * ± jitterFactor of itself; after `attempts` failed tries the rule stays `failed`. A successful start
 * resets the count; a stop, update or delete cancels a pending try.
 */
import { StreamplugError } from '../errors.js';

export interface RestartStrategy {
  /** Tries after the first failure; 0: never (eKuiper's default). */
  attempts: number;
  /** ms before the first try. */
  delay: number;
  multiplier: number;
  /** ms, the longest wait. */
  maxDelay: number;
  /** 0..1: each wait is spread by up to this fraction of itself. */
  jitterFactor: number;
}

export const DEFAULT_RESTART: RestartStrategy = { attempts: 0, delay: 1000, multiplier: 2, maxDelay: 30000, jitterFactor: 0.1 };

/** Reads and checks `options.restartStrategy`; throws E_BAD_REQUEST naming the bad field. */
export function readRestartStrategy(ruleId: string, v: unknown): RestartStrategy {
  if (v === undefined || v === null) return { ...DEFAULT_RESTART };
  const bad = (field: string, expected: string, found: unknown) =>
    new StreamplugError('E_BAD_REQUEST', `rule ${ruleId}: options.restartStrategy.${field} must be ${expected} but found ${JSON.stringify(found)}`, { field: `options.restartStrategy.${field}` });
  if (typeof v !== 'object' || Array.isArray(v))
    throw new StreamplugError('E_BAD_REQUEST', `rule ${ruleId}: options.restartStrategy must be an object like {"attempts": 3, "delay": 1000, "multiplier": 2, "maxDelay": 30000, "jitterFactor": 0.1}`, { field: 'options.restartStrategy' });
  const o = v as Record<string, unknown>;
  const known = new Set(Object.keys(DEFAULT_RESTART));
  const unknown = Object.keys(o).filter((k) => !known.has(k));
  if (unknown.length) throw bad(unknown[0], `one of ${[...known].join(', ')} (unknown field)`, o[unknown[0]]);
  const s = { ...DEFAULT_RESTART };
  const int = (k: 'attempts' | 'delay' | 'maxDelay') => {
    if (o[k] === undefined) return;
    if (typeof o[k] !== 'number' || !Number.isInteger(o[k]) || (o[k] as number) < 0) throw bad(k, 'a whole number >= 0', o[k]);
    s[k] = o[k] as number;
  };
  int('attempts');
  int('delay');
  int('maxDelay');
  if (o.multiplier !== undefined) {
    if (typeof o.multiplier !== 'number' || !Number.isFinite(o.multiplier) || o.multiplier < 1) throw bad('multiplier', 'a number >= 1', o.multiplier);
    s.multiplier = o.multiplier;
  }
  if (o.jitterFactor !== undefined) {
    if (typeof o.jitterFactor !== 'number' || !(o.jitterFactor >= 0 && o.jitterFactor <= 1)) throw bad('jitterFactor', 'a number from 0 to 1', o.jitterFactor);
    s.jitterFactor = o.jitterFactor;
  }
  if (s.maxDelay < s.delay) throw bad('maxDelay', `at least delay (${s.delay})`, s.maxDelay);
  return s;
}

/** The wait before try `k` (0-based); `random` in [0, 1). */
export function restartDelay(s: RestartStrategy, k: number, random = Math.random()): number {
  const base = Math.min(s.delay * Math.pow(s.multiplier, k), s.maxDelay);
  return Math.max(0, Math.round(base * (1 + s.jitterFactor * (2 * random - 1))));
}
