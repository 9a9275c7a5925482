/** Limits applied to every plugin zip, whatever its origin. Generous for real plugins, fatal for bombs. */
export interface ZipLimits {
  /** Largest zip accepted from a download or upload, in bytes. */
  maxZipBytes: number;
  /** Most entries (files and folders) in one zip. */
  maxEntries: number;
  /** Most bytes inflated from all entries together, counted as they are inflated. */
  maxUncompressedBytes: number;
  /** Highest inflated/compressed ratio of one entry, applied once that entry passes ratioFloorBytes. */
  maxRatio: number;
  /** Entries smaller than this are not ratio-checked (a small text of zeros compresses 1000:1 honestly). */
  ratioFloorBytes: number;
}

export const DEFAULT_LIMITS: ZipLimits = {
  maxZipBytes: 64 * 1024 * 1024,
  maxEntries: 256,
  maxUncompressedBytes: 256 * 1024 * 1024,
  maxRatio: 100,
  ratioFloorBytes: 1024 * 1024,
};

export function resolveLimits(partial?: Partial<ZipLimits>): ZipLimits {
  return { ...DEFAULT_LIMITS, ...(partial ?? {}) };
}
