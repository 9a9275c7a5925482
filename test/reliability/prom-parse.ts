/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), enough to refuse what a
 * Prometheus server would refuse: bad metric or label names, bad escapes, unparsable values, a sample
 * without its family's TYPE, a TYPE given twice or after its samples, duplicate series, counters
 * whose samples do not end in _total, and a text that does not end with a newline.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of one series, or undefined. */
  get(name: string, labels?: Record<string, string>): number | undefined;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function family(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_total', '_created', '_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && types.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return undefined;
}

function parseValue(s: string, line: number): number {
  // Prometheus reads values with Go's strconv.ParseFloat: Inf, Infinity and NaN in any case.
  if (/^\+?inf(inity)?$/i.test(s)) return Infinity;
  if (/^-inf(inity)?$/i.test(s)) return -Infinity;
  if (/^nan$/i.test(s)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`line ${line}: value ${JSON.stringify(s)} is not a number`);
  return Number(s);
}

export function parseExposition(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const seenSamples = new Set<string>();
  const familiesWithSamples = new Set<string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(raw)) throw new Error(`line ${n}: malformed ${raw}`);
        return; // a comment
      }
      const [, kind, name, rest] = m;
      if (!NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type ${rest}`);
        if (types.has(name)) throw new Error(`line ${n}: TYPE of ${name} given twice`);
        if (familiesWithSamples.has(name)) throw new Error(`line ${n}: TYPE of ${name} after its samples`);
        types.set(name, rest);
      } else {
        if (helps.has(name)) throw new Error(`line ${n}: HELP of ${name} given twice`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`line ${n}: bad escape in HELP`);
        helps.add(name);
      }
      return;
    }
    // name{labels} value [timestamp]
    let p = 0;
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw);
    if (!nameMatch) throw new Error(`line ${n}: no metric name in ${JSON.stringify(raw)}`);
    const name = nameMatch[0];
    p = name.length;
    const labels: Record<string, string> = {};
    if (raw[p] === '{') {
      p++;
      for (;;) {
        if (raw[p] === '}') {
          p++;
          break;
        }
        const lm = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(raw.slice(p));
        if (!lm || !LABEL.test(lm[0])) throw new Error(`line ${n}: bad label name at ${p}`);
        const lname = lm[0];
        p += lname.length;
        if (raw[p] !== '=' || raw[p + 1] !== '"') throw new Error(`line ${n}: expected ="value" after ${lname}`);
        p += 2;
        let v = '';
        for (;;) {
          const c = raw[p];
          if (c === undefined) throw new Error(`line ${n}: unterminated label value`);
          if (c === '"') break;
          if (c === '\\') {
            const e = raw[p + 1];
            if (e === 'n') v += '\n';
            else if (e === '\\') v += '\\';
            else if (e === '"') v += '"';
            else throw new Error(`line ${n}: bad escape \\${e}`);
            p += 2;
            continue;
          }
          v += c;
          p++;
        }
        p++;
        if (lname in labels) throw new Error(`line ${n}: label ${lname} twice`);
        labels[lname] = v;
        if (raw[p] === ',') p++;
        else if (raw[p] !== '}') throw new Error(`line ${n}: expected , or } at ${p}`);
      }
    }
    if (raw[p] !== ' ') throw new Error(`line ${n}: expected a space before the value`);
    const parts = raw.slice(p + 1).split(' ');
    if (parts.length < 1 || parts.length > 2) throw new Error(`line ${n}: expected a value and an optional timestamp`);
    const value = parseValue(parts[0], n);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`line ${n}: bad timestamp`);
    const fam = family(name, types);
    if (!fam) throw new Error(`line ${n}: sample ${name} has no TYPE before it`);
    const type = types.get(fam)!;
    if (type === 'counter' && !(name.endsWith('_total') || name.endsWith('_created')) && name !== fam) throw new Error(`line ${n}: counter sample ${name}`);
    if (type === 'counter' && value < 0) throw new Error(`line ${n}: negative counter ${name}`);
    familiesWithSamples.add(fam);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    if (seenSamples.has(key)) throw new Error(`line ${n}: duplicate series ${key}`);
    seenSamples.add(key);
    samples.push({ name, labels, value });
  });
  return {
    types,
    samples,
    get(name, want = {}) {
      const hit = samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
      if (hit.length > 1) throw new Error(`${name} ${JSON.stringify(want)} matches ${hit.length} series`);
      return hit[0]?.value;
    },
  };
}
