/** Text and JSON renderings of check reports, shared by `streamplug check` and other front ends. */
import type { CheckReport } from './types.js';

const MARK = { ok: 'ok', warn: 'warn', refused: 'REFUSED', skipped: 'skipped' } as const;

/** One header line per file, then one row per check. */
export function formatReport(report: CheckReport): string {
  const verdict = report.loadable ? 'loadable' : `refused (${report.error?.code})`;
  const lines = [`${report.file}: ${verdict} [${report.flavour}]`];
  const width = Math.max(...report.rows.map((r) => r.check.length), 5);
  for (const row of report.rows) {
    const code = row.code ? `${row.code}: ` : '';
    lines.push(`  ${MARK[row.status].padEnd(8)} ${row.check.padEnd(width)}  ${code}${row.message}`);
  }
  return lines.join('\n');
}

/** A plain object for JSON output: the error becomes { code, message, details }. */
export function reportToJSON(report: CheckReport): Record<string, unknown> {
  const { error, ...rest } = report;
  return error ? { ...rest, error: { code: error.code, message: error.message, details: error.details } } : { ...rest };
}
