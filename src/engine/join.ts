/**
 * Joins, as eKuiper's JoinOp and LookupNode do them. A joined row is a plain row holding every part's
 * fields (the first part wins a name two parts share, as eKuiper's JoinTuple.ToMap), and remembers its
 * parts by qualifier (stream/table name or alias) so that `s.id` reads s's row.
 *
 * The ON condition runs column-wise: all candidate pairs of a batch go through it in one call.
 */
import { StreamplugError } from '../errors.js';
import type { Row } from './builtins.js';
import type { Eval } from './expr.js';
import { fieldOf } from './expr.js';
import { carryMeta } from './meta.js';
import { equals, isNull } from './values.js';

type Parts = [qualifier: string, row: Row][];

/** Candidate pairs evaluated per ON call. */
const PAIR_CHUNK = 4096;

const partsOf = new WeakMap<Row, Parts>();

/** The row of one part of a joined row, by qualifier; for a row that was never joined, undefined. */
export function joinPart(row: Row, qualifier: string): Row | null | undefined {
  const parts = partsOf.get(row);
  if (!parts) return undefined;
  for (const [q, r] of parts) if (q === qualifier) return r;
  return null; // a LEFT/RIGHT/FULL join left this part out: its fields read as null
}

function parts(row: Row, qualifier: string): Parts {
  return partsOf.get(row) ?? [[qualifier, row]];
}

function joined(p: Parts): Row {
  const out: Row = {};
  for (let i = p.length - 1; i >= 0; i--) Object.assign(out, p[i][1]);
  partsOf.set(out, p);
  carryMeta(p[0][1], out); // meta() and event_time() of a joined row are its first part's
  return out;
}

export interface JoinStep {
  type: 'inner' | 'left' | 'right' | 'full' | 'cross';
  /** The qualifier of the left side for rows that were never joined (the FROM stream's). */
  leftQualifier: string;
  rightQualifier: string;
  /** ON, compiled over candidate rows (each a joined left+right); none: every pair matches. */
  on?: Eval;
}

/** eKuiper: an ON condition yields a boolean; null (a comparison with a missing field) is false. */
function matches(v: unknown, i: number): boolean {
  if (v === true) return true;
  if (v === false || isNull(v)) return false;
  throw new StreamplugError('E_EVAL', `invalid join condition that returns non-bool value ${typeof v}(${String(v)}) for pair ${i}; make ON a comparison`, {});
}

/** One join of a window's (or a batch's) left rows with the right side's rows (eKuiper's evalSet / evalJoinSets). */
export function joinSets(lefts: Row[], rights: Row[], step: JoinStep, now: number): Row[] {
  const L = lefts.map((r) => parts(r, step.leftQualifier));
  const R = rights.map((r): Parts => [[step.rightQualifier, r]]);
  // the condition over every pair at once (right join: right first, as eKuiper evaluates it)
  let mask: boolean[] | undefined;
  if (step.type !== 'cross' && step.on && L.length && R.length) {
    // column-wise in chunks: a big window pairs n × m rows, which must not all exist at once
    mask = [];
    const total = L.length * R.length;
    for (let start = 0; start < total; start += PAIR_CHUNK) {
      const cands: Row[] = [];
      for (let k = start; k < Math.min(total, start + PAIR_CHUNK); k++) cands.push(joined([...L[Math.floor(k / R.length)], ...R[k % R.length]]));
      const v = step.on({ rows: cands, n: cands.length, now });
      for (let i = 0; i < v.length; i++) mask.push(matches(v[i], start + i));
    }
  }
  const hit = (li: number, ri: number) => (step.type === 'cross' || !mask ? true : mask[li * R.length + ri]);
  const out: Row[] = [];
  if (step.type === 'right') {
    for (let ri = 0; ri < R.length; ri++) {
      let any = false;
      for (let li = 0; li < L.length; li++)
        if (hit(li, ri)) {
          any = true;
          out.push(joined([...R[ri], ...L[li]]));
        }
      if (!any) out.push(joined(R[ri]));
    }
    return out;
  }
  const rightUsed = new Array<boolean>(R.length).fill(false);
  for (let li = 0; li < L.length; li++) {
    let any = false;
    for (let ri = 0; ri < R.length; ri++)
      if (hit(li, ri)) {
        any = true;
        rightUsed[ri] = true;
        out.push(joined([...L[li], ...R[ri]]));
      }
    if (!any && (step.type === 'left' || step.type === 'full')) out.push(joined(L[li]));
  }
  if (step.type === 'full') for (let ri = 0; ri < R.length; ri++) if (!rightUsed[ri]) out.push(joined(R[ri]));
  return out;
}

/** A lookup join (eKuiper's LookupNode): each left row's key values find the table rows equal on the table's fields. */
export interface LookupStep {
  type: 'inner' | 'left';
  leftQualifier: string;
  rightQualifier: string;
  /** Table fields compared for equality, and the expressions (over the left rows) giving their values. */
  keys: string[];
  values: Eval[];
  /** The rest of ON (non-equality parts), over the joined candidates. */
  rest?: Eval;
}

export function lookupJoin(lefts: Row[], lookup: (keys: string[], values: unknown[]) => Row[], step: LookupStep, now: number): Row[] {
  const frame = { rows: lefts, n: lefts.length, now };
  const cols = step.values.map((v) => v(frame));
  const pairs: { li: number; row: Row }[] = [];
  const found = lefts.map((left, li) => {
    const vals = cols.map((c) => c[li]);
    // eKuiper's memory table matches nothing for a null key value
    const rows = vals.some(isNull) ? [] : lookup(step.keys, vals);
    const lp = parts(left, step.leftQualifier);
    return rows.map((r) => {
      const row = joined([...lp, [step.rightQualifier, r]]);
      pairs.push({ li, row });
      return row;
    });
  });
  let keep: boolean[] | undefined;
  if (step.rest && pairs.length) keep = step.rest({ rows: pairs.map((p) => p.row), n: pairs.length, now }).map(matches);
  const out: Row[] = [];
  let k = 0;
  found.forEach((rows, li) => {
    let any = false;
    for (const r of rows) {
      if (!keep || keep[k]) {
        out.push(r);
        any = true;
      }
      k++;
    }
    if (!any && step.type === 'left') out.push(joined(parts(lefts[li], step.leftQualifier)));
  });
  return out;
}

/** Filters a table's rows by equality on the given fields: how a lookup table without an index is read. */
export function scanLookup(rows: Row[], keys: string[], values: unknown[]): Row[] {
  return rows.filter((r) => keys.every((k, i) => equals(fieldOf(r, k), values[i])));
}
