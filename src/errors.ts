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
  | 'UNSUPPORTED_PLATFORM';

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
