/**
 * Every error ZGQ throws on purpose is a ZGQError with a stable `code`; messages name the
 * argument, the rule and the value seen, so a caller can act on them without reading the source.
 */
export type ZGQErrorCode =
  | 'INVALID_ARGUMENT'
  | 'DIMENSION_MISMATCH'
  | 'NOT_FINITE'
  | 'EMPTY_INPUT'
  | 'DUPLICATE_ID'
  | 'NOT_BUILT'
  | 'CORRUPT_FILE'
  | 'UNSUPPORTED_VERSION'
  | 'IO'
  | 'UNSUPPORTED_PLATFORM'
  /** The work would need more memory than the limit (WebAssembly's 4 GiB); nothing was changed. */
  | 'OUT_OF_MEMORY'
  /** Another writer holds the index file's lock. */
  | 'LOCKED'
  /** Another writer replaced the index file after this index was loaded from or saved to it. */
  | 'CONFLICT'
  /** The caller's AbortSignal stopped the work; nothing was changed. */
  | 'ABORTED'
  /** The index serves searches with its rows outside its memory (ZGQIndex.open): it cannot be changed. */
  | 'READ_ONLY'
  /** A cluster request found no live replica of the shard it needed (ZGQCluster). */
  | 'UNAVAILABLE'
  /** A cluster request got no reply within its deadline (ZGQCluster). */
  | 'TIMEOUT'
  /** No index of that name is published on the cluster (ZGQCluster, zgq serve --nats). */
  | 'NOT_FOUND';

export class ZGQError extends Error {
  readonly code: ZGQErrorCode;

  constructor(code: ZGQErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ZGQError';
    this.code = code;
  }
}

/** Internal invariant check: a failure here is a bug in ZGQ, never bad input. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`zgq internal invariant violated: ${message}`);
}

/**
 * Index of the first NaN or ±Infinity in x, or -1. v * 0 is 0 for finite v and NaN otherwise, so
 * four running sums stay 0 unless a value is not finite (a few times faster than Number.isFinite on
 * each value); only then is the value looked up.
 */
export function firstNonFinite(x: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const end4 = x.length & ~3;
  for (let i = 0; i < end4; i += 4) {
    s0 += x[i] * 0;
    s1 += x[i + 1] * 0;
    s2 += x[i + 2] * 0;
    s3 += x[i + 3] * 0;
  }
  for (let i = end4; i < x.length; i++) s0 += x[i] * 0;
  if (s0 + s1 + s2 + s3 === 0) return -1;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}
