/**
 * Built-in functions with eKuiper's names. Scalars are row functions (the compiler loops them over a
 * batch column); aggregates reduce the rows of one group. Names are case-insensitive.
 */
import { createHash, randomUUID } from 'node:crypto';
import { StreamplugError } from '../errors.js';
import type { ValueType } from '../plugins/types.js';
import { jsonPathExists, jsonPathQuery, jsonPathQueryFirst } from './jsonpath.js';
import { castValue, compare, evalError, isNull, num, short, stableKey, str, toEpochMs, toText, typeName } from './values.js';

export type Row = Record<string, unknown>;

/** What a scalar may read besides its arguments. */
export interface Env {
  now: number;
}

export interface BuiltinScalar {
  kind: 'scalar';
  min: number;
  /** -1: variadic */
  max: number;
  /** true: the function sees nulls; otherwise a null argument gives `onNull` (default null) without a call. */
  nulls?: boolean;
  /** What a null argument gives, as eKuiper's checks do: false (endswith), 0 (length), … */
  onNull?: unknown;
  /** Argument positions that must be literals in the SQL. */
  literal?: number[];
  /** Checks the literal arguments when the rule is created (undefined: not a literal); throws E_ARG_LITERAL. */
  validate?: (literals: unknown[]) => void;
  type?: ValueType;
  fn: (a: unknown[], env: Env) => unknown;
}

export interface BuiltinAggregate {
  kind: 'aggregate';
  min: number;
  max: number;
  /** Accepts `*` as its argument (count(*), collect(*)). */
  star?: boolean;
  literal?: number[];
  type?: ValueType;
  /** Reduces rows [start, end) of the evaluated argument columns; `rows` are the input rows. */
  reduce: (args: unknown[][], start: number, end: number, rows: Row[]) => unknown;
}

export type Builtin = BuiltinScalar | BuiltinAggregate;

const S = (min: number, max: number, fn: BuiltinScalar['fn'], extra: Partial<BuiltinScalar> = {}): BuiltinScalar => ({ kind: 'scalar', min, max, fn, ...extra });

const math1 = (name: string, f: (x: number) => number) => S(1, 1, (a) => f(num(a[0], name)), { type: 'float64' });

function int(v: unknown, where: string): bigint {
  if (typeof v === 'bigint') return v;
  const n = num(v, where);
  if (!Number.isInteger(n)) throw evalError(`${where} expects an integer but found ${n}`, { found: n });
  return BigInt(n);
}
const bigOut = (b: bigint): number | bigint => (b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b);

function roundAway(x: number, digits = 0): number {
  const f = 10 ** digits;
  const r = Math.round(Math.abs(x) * f) / f;
  return x < 0 ? -r : r;
}

function hash(alg: string) {
  return S(1, 1, (a) => createHash(alg).update(a[0] instanceof Uint8Array ? a[0] : toText(a[0])).digest('hex'), { type: 'string' });
}

let crcTable: Uint32Array | undefined;
function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of data) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Go's json.Marshal as eKuiper's to_json uses it: object keys sorted, <, > and & escaped. */
export function goJson(v: unknown): string {
  const norm = (x: unknown): unknown => {
    if (typeof x === 'bigint') return Number(x);
    if (x instanceof Date) return x.toISOString();
    if (x instanceof Uint8Array) return Buffer.from(x).toString('base64');
    if (Array.isArray(x)) return x.map(norm);
    if (x && typeof x === 'object') {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort()) o[k] = norm((x as Record<string, unknown>)[k]);
      return o;
    }
    return x;
  };
  return JSON.stringify(norm(v) ?? null).replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Go duration text (1h30m, -10s, 100ms, 200us, 300ns) in milliseconds. */
function durationMs(text: string): number {
  let t = text.trim();
  let sign = 1;
  if (t.startsWith('-')) {
    sign = -1;
    t = t.slice(1);
  }
  const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(t))) {
    total += Number(m[1]) * UNITS[m[2]];
    at = re.lastIndex;
  }
  if (at !== t.length || t === '') throw evalError(`date_calc: ${JSON.stringify(text)} is not a duration such as 1h30m or -10s`, {});
  return sign * total;
}

/** The clock as text with fsp (0 to 6) fraction digits; milliseconds are padded with zeros. */
function nowText(now: number, pattern: string, fsp: unknown): string {
  const n = isNull(fsp) ? 0 : Math.trunc(num(fsp, 'fsp'));
  if (n < 0 || n > 6) throw evalError(`fsp must be 0 to 6 but found ${n}`, {});
  const text = formatTime(new Date(now), pattern);
  if (n === 0) return text;
  return text + '.' + String(now % 1000).padStart(3, '0').padEnd(6, '0').slice(0, n);
}

/** Microseconds within the second; text keeps its own digits beyond milliseconds. */
function microsOf(v: unknown, where: string): number {
  if (typeof v === 'string') {
    const m = /[T ]\d{2}:\d{2}:\d{2}\.(\d+)/.exec(v);
    if (m) return Number(m[1].slice(0, 6).padEnd(6, '0'));
  }
  return toDate(v, where).getUTCMilliseconds() * 1000;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

function toDate(v: unknown, where: string): Date {
  const ms = toEpochMs(v);
  if (ms === undefined) throw evalError(`${where} expects a datetime (Date, epoch ms or ISO text) but found ${typeName(v)} ${short(v)}`, {});
  return new Date(ms);
}

/** eKuiper/Java-style patterns (yyyy-MM-dd HH:mm:ss.SSS, EEE, MMM, a, Z), in UTC; text in '…' is literal. */
export function formatTime(d: Date, pattern: string): string {
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  const re = /'([^']*)'|y{4}|y{2}|M{4}|M{3}|M{2}|M|d{2}|d|H{2}|H|h{2}|h|m{2}|m|s{2}|s|S{1,9}|a|E{4}|E{1,3}|Z|z|X/g;
  return pattern.replace(re, (tok, lit: string | undefined) => {
    if (lit !== undefined) return lit;
    const h12 = d.getUTCHours() % 12 || 12;
    switch (tok) {
      case 'yyyy': return pad(d.getUTCFullYear(), 4);
      case 'yy': return pad(d.getUTCFullYear() % 100, 2);
      case 'MMMM': return MONTHS[d.getUTCMonth()];
      case 'MMM': return MONTHS[d.getUTCMonth()].slice(0, 3);
      case 'MM': return pad(d.getUTCMonth() + 1, 2);
      case 'M': return String(d.getUTCMonth() + 1);
      case 'dd': return pad(d.getUTCDate(), 2);
      case 'd': return String(d.getUTCDate());
      case 'HH': return pad(d.getUTCHours(), 2);
      case 'H': return String(d.getUTCHours());
      case 'hh': return pad(h12, 2);
      case 'h': return String(h12);
      case 'mm': return pad(d.getUTCMinutes(), 2);
      case 'm': return String(d.getUTCMinutes());
      case 'ss': return pad(d.getUTCSeconds(), 2);
      case 's': return String(d.getUTCSeconds());
      case 'a': return d.getUTCHours() < 12 ? 'AM' : 'PM';
      case 'EEEE': return DAYS[d.getUTCDay()];
      case 'Z': return '+0000';
      case 'z': return 'UTC';
      case 'X': return 'Z';
      default:
        if (tok[0] === 'S') return pad(d.getUTCMilliseconds(), 3).padEnd(tok.length, '0').slice(0, tok.length);
        return DAYS[d.getUTCDay()].slice(0, 3); // E, EE, EEE
    }
  });
}

/** MySQL/eKuiper format(x, d): thousands separators and d decimals. */
function formatNumber(x: number, d: number): string {
  const [i, f] = roundAway(x, d).toFixed(d).split('.');
  const neg = i.startsWith('-');
  const digits = neg ? i.slice(1) : i;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + grouped + (f ? '.' + f : '');
}

const regexCache = new Map<string, RegExp>();
function regex(p: unknown, where: string, flags = ''): RegExp {
  const s = str(p, where);
  const key = flags + '/' + s;
  let r = regexCache.get(key);
  if (!r) {
    try {
      r = new RegExp(s, flags);
    } catch (e) {
      throw evalError(`${where}: regular expression ${JSON.stringify(s)} is invalid (${(e as Error).message})`, {});
    }
    regexCache.set(key, r);
  }
  return r;
}

function badLiteral(message: string): StreamplugError {
  return new StreamplugError('E_ARG_LITERAL', message, {});
}

/** A literal JSON path must parse when the rule is created. */
function pathLiteral(lits: unknown[]): void {
  if (lits[1] === undefined) return;
  if (typeof lits[1] !== 'string') throw badLiteral(`the JSON path must be text like "$.a.b" but found ${short(lits[1])}`);
  try {
    jsonPathExists({}, lits[1]);
  } catch (e) {
    throw badLiteral((e as Error).message);
  }
}

function base64Literal(lits: unknown[]): void {
  if (lits[1] !== undefined && (typeof lits[1] !== 'string' || lits[1].toLowerCase() !== 'base64'))
    throw badLiteral(`only "base64" is supported as the scheme but found ${short(lits[1])}`);
}

function jsonData(v: unknown, where: string): unknown {
  if (isNull(v)) throw evalError(`${where}: invalid data nil for jsonpath; guard the field with IS NOT NULL`, {});
  return v;
}

const arr = (v: unknown, where: string): unknown[] => {
  if (Array.isArray(v)) return v;
  throw evalError(`${where} expects an array but found ${typeName(v)} ${short(v)}`, {});
};

export const SCALARS: Record<string, BuiltinScalar> = {
  // math
  abs: S(1, 1, (a) => (typeof a[0] === 'bigint' ? (a[0] < 0n ? -a[0] : a[0]) : Math.abs(num(a[0], 'abs')))),
  acos: math1('acos', Math.acos),
  asin: math1('asin', Math.asin),
  atan: math1('atan', Math.atan),
  atan2: S(2, 2, (a) => Math.atan2(num(a[0], 'atan2'), num(a[1], 'atan2')), { type: 'float64' }),
  bitand: S(2, 2, (a) => bigOut(int(a[0], 'bitand') & int(a[1], 'bitand')), { type: 'int64' }),
  bitor: S(2, 2, (a) => bigOut(int(a[0], 'bitor') | int(a[1], 'bitor')), { type: 'int64' }),
  bitxor: S(2, 2, (a) => bigOut(int(a[0], 'bitxor') ^ int(a[1], 'bitxor')), { type: 'int64' }),
  bitnot: S(1, 1, (a) => bigOut(~int(a[0], 'bitnot')), { type: 'int64' }),
  ceil: S(1, 1, (a) => Math.ceil(num(a[0], 'ceil'))),
  ceiling: S(1, 1, (a) => Math.ceil(num(a[0], 'ceiling'))),
  cos: math1('cos', Math.cos),
  cosh: math1('cosh', Math.cosh),
  cot: math1('cot', (x) => 1 / Math.tan(x)),
  degrees: math1('degrees', (x) => (x * 180) / Math.PI),
  exp: math1('exp', Math.exp),
  floor: S(1, 1, (a) => Math.floor(num(a[0], 'floor'))),
  ln: math1('ln', Math.log),
  log: S(1, 2, (a) => (a.length === 1 ? Math.log10(num(a[0], 'log')) : Math.log(num(a[1], 'log')) / Math.log(num(a[0], 'log'))), { type: 'float64' }),
  mod: S(2, 2, (a) => {
    if (typeof a[0] === 'bigint' || typeof a[1] === 'bigint') return bigOut(int(a[0], 'mod') % int(a[1], 'mod'));
    const y = num(a[1], 'mod');
    if (y === 0) throw evalError('mod by zero; guard the divisor with CASE or WHERE', {});
    return num(a[0], 'mod') % y;
  }),
  pi: S(0, 0, () => Math.PI, { type: 'float64' }),
  power: S(2, 2, (a) => num(a[0], 'power') ** num(a[1], 'power')),
  pow: S(2, 2, (a) => num(a[0], 'pow') ** num(a[1], 'pow')),
  radians: math1('radians', (x) => (x * Math.PI) / 180),
  rand: S(0, 0, () => Math.random(), { type: 'float64' }),
  round: S(1, 2, (a) => roundAway(num(a[0], 'round'), a.length > 1 ? num(a[1], 'round') : 0)),
  sign: S(1, 1, (a) => Math.sign(num(a[0], 'sign')), { type: 'int64' }),
  sin: math1('sin', Math.sin),
  sinh: math1('sinh', Math.sinh),
  sqrt: math1('sqrt', Math.sqrt),
  tan: math1('tan', Math.tan),
  tanh: math1('tanh', Math.tanh),
  trunc: S(2, 2, (a) => {
    const f = 10 ** num(a[1], 'trunc');
    return Math.trunc(num(a[0], 'trunc') * f) / f;
  }),

  // string
  concat: S(0, -1, (a) => a.map((v) => (isNull(v) ? '' : toText(v))).join(''), { nulls: true, type: 'string' }),
  endswith: S(2, 2, (a) => toText(a[0]).endsWith(toText(a[1])), { type: 'bool', onNull: false }),
  startswith: S(2, 2, (a) => toText(a[0]).startsWith(toText(a[1])), { type: 'bool', onNull: false }),
  format: S(2, 2, (a) => formatNumber(num(a[0], 'format'), num(a[1], 'format')), { type: 'string' }),
  indexof: S(2, 2, (a) => Buffer.from(toText(a[0])).indexOf(Buffer.from(toText(a[1]))), { type: 'int64', onNull: -1 }),
  length: S(1, 1, (a) => {
    const v = a[0];
    if (Array.isArray(v)) return v.length;
    if (v && typeof v === 'object' && !(v instanceof Date) && !(v instanceof Uint8Array)) return Object.keys(v).length;
    return [...toText(v)].length;
  }, { type: 'int64', onNull: 0 }),
  lower: S(1, 1, (a) => str(a[0], 'lower').toLowerCase(), { type: 'string' }),
  upper: S(1, 1, (a) => str(a[0], 'upper').toUpperCase(), { type: 'string' }),
  lpad: S(2, 2, (a) => ' '.repeat(Math.max(0, num(a[1], 'lpad'))) + str(a[0], 'lpad'), { type: 'string' }),
  rpad: S(2, 2, (a) => str(a[0], 'rpad') + ' '.repeat(Math.max(0, num(a[1], 'rpad'))), { type: 'string' }),
  ltrim: S(1, 1, (a) => str(a[0], 'ltrim').trimStart(), { type: 'string' }),
  rtrim: S(1, 1, (a) => str(a[0], 'rtrim').trimEnd(), { type: 'string' }),
  trim: S(1, 1, (a) => str(a[0], 'trim').trim(), { type: 'string' }),
  numbytes: S(1, 1, (a) => Buffer.byteLength(toText(a[0]), 'utf8'), { type: 'int64', onNull: 0 }),
  reverse: S(1, 1, (a) => [...str(a[0], 'reverse')].reverse().join(''), { type: 'string' }),
  // byte offsets, as eKuiper: a start past the end gives "", an end past the end stops at the end
  substring: S(2, 3, (a) => {
    const s = Buffer.from(toText(a[0]));
    const start = num(a[1], 'substring');
    if (start < 0) throw evalError(`substring: start index ${start} must be a positive number`, {});
    if (a.length > 2) {
      const end = num(a[2], 'substring');
      if (end < 0) throw evalError(`substring: end index ${end} must be a positive number`, {});
      if (start > end) throw evalError(`substring: start index ${start} must be smaller than end index ${end}`, {});
      if (start > s.length) return '';
      return s.subarray(start, Math.min(end, s.length)).toString();
    }
    if (start > s.length) return '';
    return s.subarray(start).toString();
  }, { type: 'string' }),
  split_value: S(3, 3, (a) => {
    const parts = toText(a[0]).split(toText(a[1]));
    const i = num(a[2], 'split_value');
    if (!Number.isInteger(i) || i >= parts.length || i < -parts.length)
      throw evalError(`split_value: index ${i} is out of range, the value has ${parts.length} parts`, { index: i, parts: parts.length });
    return parts[i < 0 ? parts.length + i : i];
  }, { type: 'string' }),
  regexp_matches: S(2, 2, (a) => regex(toText(a[1]), 'regexp_matches').test(toText(a[0])), { type: 'bool', onNull: false }),
  regexp_replace: S(3, 3, (a) => str(a[0], 'regexp_replace').replace(regex(a[1], 'regexp_replace', 'g'), str(a[2], 'regexp_replace')), { type: 'string' }),
  regexp_substr: S(2, 2, (a) => regex(a[1], 'regexp_substr').exec(str(a[0], 'regexp_substr'))?.[0] ?? null, { type: 'string' }),

  // conversion
  cast: S(2, 2, (a) => castValue(a[0], String(a[1]).toLowerCase()), { literal: [1], nulls: true }),
  // eKuiper's chr gives a rune, which its JSON writes as the code point number: chr(65) is 65, chr("A") is 65
  chr: S(1, 1, (a) => {
    const v = a[0];
    if (typeof v === 'string') {
      if (Buffer.byteLength(v) > 1) throw evalError(`chr: parameter ${short(v)} is longer than 1`, {});
      return v.codePointAt(0) ?? null;
    }
    if (typeof v === 'bigint') return Number(BigInt.asIntN(32, v));
    if (typeof v === 'number') return Math.trunc(v) | 0;
    throw evalError(`chr: only bigint, float and string can be converted to a character, found ${typeName(v)}`, {});
  }, { type: 'int64' }),
  encode: S(2, 2, (a) => {
    if (typeof a[1] !== 'string' || a[1].toLowerCase() !== 'base64') throw evalError(`encode: unknown scheme ${short(a[1])}; only "base64" is supported`, {});
    if (typeof a[0] !== 'string') throw evalError(`encode: only text can be encoded, found ${typeName(a[0])} ${short(a[0])}`, {});
    return Buffer.from(a[0]).toString('base64');
  }, { type: 'string', validate: base64Literal }),
  // eKuiper returns bytes, which its JSON writes as base64 again
  decode: S(2, 2, (a) => {
    if (typeof a[1] !== 'string' || a[1].toLowerCase() !== 'base64') throw evalError(`decode: unknown scheme ${short(a[1])}; only "base64" is supported`, {});
    if (typeof a[0] !== 'string') throw evalError(`decode: only text can be decoded, found ${typeName(a[0])} ${short(a[0])}`, {});
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(a[0]) || a[0].length % 4 !== 0) throw evalError(`decode: ${short(a[0])} is not base64`, {});
    return new Uint8Array(Buffer.from(a[0], 'base64'));
  }, { type: 'bytes', validate: base64Literal }),
  to_json: S(1, 1, (a) => goJson(a[0]), { type: 'string' }),
  parse_json: S(1, 1, (a) => {
    if (isNull(a[0]) || a[0] === 'null') return null;
    if (typeof a[0] !== 'string') throw evalError(`parse_json: fail to convert ${short(a[0])} to string`, {});
    try {
      return JSON.parse(a[0]);
    } catch (e) {
      throw evalError(`parse_json: fail to parse json: ${(e as Error).message}`, {});
    }
  }, { nulls: true }),

  // hashing
  md5: hash('md5'),
  sha1: hash('sha1'),
  sha224: hash('sha224'),
  sha256: hash('sha256'),
  sha384: hash('sha384'),
  sha512: hash('sha512'),
  crc32: S(1, 1, (a) => crc32(a[0] instanceof Uint8Array ? a[0] : Buffer.from(toText(a[0]))).toString(16), { type: 'string' }),

  // date and time (UTC; `now` is the rule's clock, so tests can drive it)
  // eKuiper: "yyyy-MM-dd HH:mm:ss", with fsp (0 to 6) digits of fraction
  now: S(0, 1, (a, env) => nowText(env.now, 'yyyy-MM-dd HH:mm:ss', a[0]), { type: 'string' }),
  current_timestamp: S(0, 1, (a, env) => nowText(env.now, 'yyyy-MM-dd HH:mm:ss', a[0]), { type: 'string' }),
  tstamp: S(0, 0, (_a, env) => env.now, { type: 'int64' }),
  cur_date: S(0, 0, (_a, env) => formatTime(new Date(env.now), 'yyyy-MM-dd'), { type: 'string' }),
  cur_time: S(0, 1, (a, env) => nowText(env.now, 'HH:mm:ss', a[0]), { type: 'string' }),
  format_time: S(2, 2, (a) => formatTime(toDate(a[0], 'format_time'), str(a[1], 'format_time')), { type: 'string' }),
  unix_timestamp: S(0, 1, (a, env) => Math.floor((a.length ? toDate(a[0], 'unix_timestamp').getTime() : env.now) / 1000), { type: 'int64' }),
  from_unix_time: S(1, 1, (a) => {
    const sec = Math.trunc(num(a[0], 'from_unix_time'));
    return sec === 0 ? null : formatTime(new Date(sec * 1000), 'yyyy-MM-dd HH:mm:ss');
  }, { type: 'string' }),
  current_date: S(0, 0, (_a, env) => formatTime(new Date(env.now), 'yyyy-MM-dd'), { type: 'string' }),
  current_time: S(0, 1, (a, env) => nowText(env.now, 'HH:mm:ss', a[0]), { type: 'string' }),
  local_time: S(0, 1, (a, env) => nowText(env.now, 'yyyy-MM-dd HH:mm:ss', a[0]), { type: 'string' }),
  local_timestamp: S(0, 1, (a, env) => nowText(env.now, 'yyyy-MM-dd HH:mm:ss', a[0]), { type: 'string' }),
  day_name: S(1, 1, (a) => DAYS[toDate(a[0], 'day_name').getUTCDay()], { type: 'string' }),
  month_name: S(1, 1, (a) => MONTHS[toDate(a[0], 'month_name').getUTCMonth()], { type: 'string' }),
  day_of_year: S(1, 1, (a) => {
    const d = toDate(a[0], 'day_of_year');
    return Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
  }, { type: 'int64' }),
  microsecond: S(1, 1, (a) => microsOf(a[0], 'microsecond'), { type: 'int64' }),
  last_day: S(1, 1, (a) => {
    const d = toDate(a[0], 'last_day');
    return formatTime(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)), 'yyyy-MM-dd');
  }, { type: 'string' }),
  from_days: S(1, 1, (a) => {
    const days = Math.trunc(num(a[0], 'from_days'));
    return days === 0 ? null : formatTime(new Date((days - 1) * 86_400_000), 'yyyy-MM-dd');
  }, { type: 'string' }),
  // eKuiper returns a Go duration, which its JSON writes as nanoseconds
  date_diff: S(2, 2, (a) => (toDate(a[1], 'date_diff').getTime() - toDate(a[0], 'date_diff').getTime()) * 1_000_000, { type: 'int64' }),
  date_calc: S(2, 2, (a) => {
    const d = toDate(a[0], 'date_calc');
    return formatTime(new Date(d.getTime() + durationMs(toText(a[1]))), 'yyyy-MM-dd HH:mm:ss');
  }, { type: 'string' }),
  year: S(1, 1, (a) => toDate(a[0], 'year').getUTCFullYear(), { type: 'int64' }),
  month: S(1, 1, (a) => toDate(a[0], 'month').getUTCMonth() + 1, { type: 'int64' }),
  day: S(1, 1, (a) => toDate(a[0], 'day').getUTCDate(), { type: 'int64' }),
  day_of_month: S(1, 1, (a) => toDate(a[0], 'day_of_month').getUTCDate(), { type: 'int64' }),
  day_of_week: S(1, 1, (a) => toDate(a[0], 'day_of_week').getUTCDay() + 1, { type: 'int64' }),
  hour: S(1, 1, (a) => toDate(a[0], 'hour').getUTCHours(), { type: 'int64' }),
  minute: S(1, 1, (a) => toDate(a[0], 'minute').getUTCMinutes(), { type: 'int64' }),
  second: S(1, 1, (a) => toDate(a[0], 'second').getUTCSeconds(), { type: 'int64' }),

  // JSON path
  // eKuiper: null data is an error ("invalid data nil for jsonpath"), not a null
  json_path_query: S(2, 2, (a) => jsonPathQuery(jsonData(a[0], 'json_path_query'), str(a[1], 'json_path_query')), { nulls: true, validate: pathLiteral }),
  json_path_query_first: S(2, 2, (a) => jsonPathQueryFirst(jsonData(a[0], 'json_path_query_first'), str(a[1], 'json_path_query_first')), { nulls: true, validate: pathLiteral }),
  json_path_exists: S(2, 2, (a) => jsonPathExists(jsonData(a[0], 'json_path_exists'), str(a[1], 'json_path_exists')), { type: 'bool', nulls: true, validate: pathLiteral }),

  // arrays and others
  cardinality: S(1, 1, (a) => arr(a[0], 'cardinality').length, { type: 'int64', onNull: 0 }),
  array_contains: S(2, 2, (a) => arr(a[0], 'array_contains').some((x) => stableKey(x) === stableKey(a[1])), { type: 'bool', nulls: true }),
  array_position: S(2, 2, (a) => arr(a[0], 'array_position').findIndex((x) => stableKey(x) === stableKey(a[1])), { type: 'int64', nulls: true }),
  element_at: S(2, 2, (a) => {
    if (Array.isArray(a[0])) {
      const i = num(a[1], 'element_at');
      return a[0][i < 0 ? a[0].length + i : i] ?? null;
    }
    if (typeof a[0] === 'object') return (a[0] as Row)[str(a[1], 'element_at')] ?? null;
    throw evalError(`element_at expects an array or struct but found ${typeName(a[0])}`, {});
  }),
  // the projection turns the array into one row per element (a multiple-row function, SELECT only)
  unnest: S(1, 1, (a) => {
    if (!Array.isArray(a[0])) throw evalError('the argument for the unnest function should be array', {});
    return a[0];
  }),
  isnull: S(1, 1, (a) => isNull(a[0]), { nulls: true, type: 'bool' }),
  coalesce: S(1, -1, (a) => a.find((v) => !isNull(v)) ?? null, { nulls: true }),
  newuuid: S(0, 0, () => randomUUID(), { type: 'string' }),
};

// ---- aggregates

function values(args: unknown[][], start: number, end: number): unknown[] {
  const out: unknown[] = [];
  const col = args[0];
  for (let i = start; i < end; i++) if (!isNull(col[i])) out.push(col[i]);
  return out;
}

function numbers(args: unknown[][], start: number, end: number, where: string): number[] {
  return values(args, start, end).map((v) => num(v, where));
}

function variance(xs: number[], sample: boolean): number | null {
  const n = xs.length;
  if (n === 0 || (sample && n < 2)) return null;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  return xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (sample ? n - 1 : n);
}

const A = (min: number, max: number, reduce: BuiltinAggregate['reduce'], extra: Partial<BuiltinAggregate> = {}): BuiltinAggregate => ({ kind: 'aggregate', min, max, reduce, ...extra });

export const AGGREGATES: Record<string, BuiltinAggregate> = {
  count: A(1, 1, (args, s, e) => (args.length === 0 ? e - s : values(args, s, e).length), { star: true, type: 'int64' }),
  sum: A(1, 1, (args, s, e) => {
    const vs = values(args, s, e);
    if (vs.length === 0) return null;
    if (vs.every((v) => typeof v === 'bigint')) return bigOut((vs as bigint[]).reduce((x, y) => x + y, 0n));
    return vs.reduce((x: number, v) => x + num(v, 'sum'), 0);
  }),
  // eKuiper: the average of BIGINTs is a BIGINT (the sum divided by the count, truncated)
  avg: A(1, 1, (args, s, e) => {
    const vs = values(args, s, e);
    if (!vs.length) return null;
    if (typeof vs[0] === 'bigint') return bigOut(vs.reduce((x: bigint, v) => x + int(v, 'avg'), 0n) / BigInt(vs.length));
    const xs = vs.map((v) => num(v, 'avg'));
    return xs.reduce((x, y) => x + y, 0) / xs.length;
  }, { type: 'float64' }),
  min: A(1, 1, (args, s, e) => extreme(values(args, s, e), -1)),
  max: A(1, 1, (args, s, e) => extreme(values(args, s, e), 1)),
  collect: A(1, 1, (args, s, e, rows) => {
    const out: unknown[] = [];
    for (let i = s; i < e; i++) out.push(args.length === 0 ? { ...rows[i] } : args[0][i]);
    return out;
  }, { star: true }),
  /** eKuiper: deduplicate(col, true): every row whose col was not seen before in the group; (col, false): the last row, or null when its col repeats. */
  deduplicate: A(2, 2, (args, s, e, rows) => {
    const all = args[1][s] === true;
    if (all) {
      const seen = new Set<string>();
      const out: Row[] = [];
      for (let i = s; i < e; i++) {
        const k = stableKey(args[0][i]);
        if (!seen.has(k)) {
          seen.add(k);
          out.push({ ...rows[i] });
        }
      }
      return out;
    }
    if (e <= s) return null;
    const last = stableKey(args[0][e - 1]);
    for (let i = s; i < e - 1; i++) if (stableKey(args[0][i]) === last) return null;
    return { ...rows[e - 1] };
  }, { literal: [1] }),
  stddev: A(1, 1, (args, s, e) => {
    const v = variance(numbers(args, s, e, 'stddev'), false);
    return v === null ? null : Math.sqrt(v);
  }, { type: 'float64' }),
  stddevs: A(1, 1, (args, s, e) => {
    const v = variance(numbers(args, s, e, 'stddevs'), true);
    return v === null ? null : Math.sqrt(v);
  }, { type: 'float64' }),
  var: A(1, 1, (args, s, e) => variance(numbers(args, s, e, 'var'), false), { type: 'float64' }),
  vars: A(1, 1, (args, s, e) => variance(numbers(args, s, e, 'vars'), true), { type: 'float64' }),
  median: A(1, 1, (args, s, e) => {
    const xs = numbers(args, s, e, 'median').sort((x, y) => x - y);
    if (!xs.length) return null;
    const m = xs.length >> 1;
    return xs.length % 2 ? xs[m] : (xs[m - 1] + xs[m]) / 2;
  }, { type: 'float64' }),
  last_value: A(1, 2, (args, s, e) => {
    const ignoreNull = args[1]?.[s] === true;
    for (let i = e - 1; i >= s; i--) if (!ignoreNull || !isNull(args[0][i])) return args[0][i] ?? null;
    return null;
  }, { literal: [1] }),
};

function extreme(vs: unknown[], dir: 1 | -1): unknown {
  let best: unknown = null;
  for (const v of vs) {
    if (best === null) {
      best = v;
      continue;
    }
    const c = compare(v, best);
    if (c === undefined) throw evalError(`${dir > 0 ? 'max' : 'min'} cannot compare ${typeName(v)} with ${typeName(best)}`, {});
    if (c * dir > 0) best = v;
  }
  return best;
}

/** Functions the compiler handles itself (they read the window, not the row). */
export const WINDOW_FUNCS = new Set(['window_start', 'window_end']);

export function lookupBuiltin(name: string): Builtin | undefined {
  const k = name.toLowerCase();
  return Object.hasOwn(SCALARS, k) ? SCALARS[k] : Object.hasOwn(AGGREGATES, k) ? AGGREGATES[k] : undefined;
}
