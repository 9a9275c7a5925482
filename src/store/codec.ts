/**
 * JSON that round-trips the engine's scalars: bigint (int64) and Uint8Array (bytes) are tagged
 * objects on disk, so a checkpoint restores the same types it saved.
 */
export function encodeValue(v: unknown): string {
  return JSON.stringify(v, function (k, x) {
    const raw = (this as Record<string, unknown>)[k];
    if (typeof raw === 'bigint') return { $bigint: raw.toString() };
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('base64') };
    return x;
  });
}

export function decodeValue(text: string): unknown {
  return JSON.parse(text, (_k, x) => {
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      const keys = Object.keys(x);
      if (keys.length === 1 && typeof x.$bigint === 'string') return BigInt(x.$bigint);
      if (keys.length === 1 && typeof x.$bytes === 'string') return new Uint8Array(Buffer.from(x.$bytes, 'base64'));
    }
    return x;
  });
}
