/**
 * Orders plugin versions ("1.2.10" > "1.2.9", "2.0.0-rc1" < "2.0.0"), for the downgrade check.
 * Numeric dot parts compare as numbers; anything else as text. Negative when a < b.
 */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const m = /^v?([^-+]*)(?:-([^+]*))?/.exec(v.trim())!;
    return { parts: m[1].split('.'), pre: m[2] };
  };
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < Math.max(x.parts.length, y.parts.length); i++) {
    const p = x.parts[i] ?? '0';
    const q = y.parts[i] ?? '0';
    const c = /^\d+$/.test(p) && /^\d+$/.test(q) ? Number(p) - Number(q) : p.localeCompare(q);
    if (c !== 0) return Math.sign(c);
  }
  // a pre-release comes before its release
  if (x.pre !== undefined && y.pre === undefined) return -1;
  if (x.pre === undefined && y.pre !== undefined) return 1;
  return Math.sign((x.pre ?? '').localeCompare(y.pre ?? ''));
}
