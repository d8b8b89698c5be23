/**
 * Checks of what callers pass at the public boundary (ids, k, threads, vector values), with the
 * messages that name the argument, the rule and the value seen; and the conversions they share
 * (cosine normalisation, the searchable rows of a batch).
 */
import { ZGQError } from './errors.js';
import { firstOutOfRange, valueLimit } from './persist.js';
import { NO_ID } from './ids.js';

export function checkThreads(threads: number | undefined): void {
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 256)) {
    throw new ZGQError('INVALID_ARGUMENT', `threads must be an integer in [1, 256]; got ${String(threads)}`);
  }
}
export function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 0 || k > 1 << 20) {
    throw new ZGQError('INVALID_ARGUMENT', `k must be an integer in [0, 1048576]; got ${describeValue(k)}`);
  }
}
/**
 * NOT_FINITE unless every value is finite and within ±valueLimit(dim) (src/persist.ts): beyond it,
 * squared distances overflow float32.
 */
export function checkFinite(x: Float32Array, dim: number, what: string, firstRow = 0): void {
  const i = firstOutOfRange(x, dim);
  if (i < 0) return;
  const at = `${what} ${firstRow + Math.floor(i / dim)}`;
  if (!Number.isFinite(x[i])) throw new ZGQError('NOT_FINITE', `${at} has a non-finite value ${x[i]} at position ${i % dim}`);
  throw outOfRange(at, x[i], i % dim, dim);
}
export function outOfRange(what: string, value: number, position: number, dim: number): ZGQError {
  return new ZGQError(
    'NOT_FINITE',
    `${what} has value ${value.toPrecision(7)} at position ${position}; values must lie within ±${valueLimit(dim).toPrecision(4)} at dim ${dim}, or squared distances overflow float32`,
  );
}
/** A value named with its type where the type is the problem: "5n (a bigint)", "'5' (a string)". */
export function describeValue(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  if (typeof value === 'string') return `${JSON.stringify(value)} (a string)`;
  if (typeof value === 'number') return String(value);
  return `${String(value)} (${describe(value)})`;
}
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}
/**
 * The vectors of an add (Vectors, converted once as flatRows does) and their ids, checked: a whole
 * number of rows of `dim`, one id each, finite values.
 */
export function addedRows(input: Vectors, ids: Uint32Array | ArrayLike<number> | undefined, dim: number): { vectors: Float32Array; ids: Uint32Array; count: number } {
  const vectors = flatRows(input, dim, 'vectors');
  if (vectors.length % dim !== 0) {
    throw new ZGQError('DIMENSION_MISMATCH', `vectors has ${vectors.length} values, not a multiple of the index dim ${dim}`);
  }
  const count = vectors.length / dim;
  if (ids === undefined) throw new ZGQError('INVALID_ARGUMENT', 'add needs the ids of the new vectors, one per vector');
  const resolved = resolveIds(ids, count);
  checkFinite(vectors, dim, 'vector');
  return { vectors, ids: resolved, count };
}

export function resolveIds(given: Uint32Array | ArrayLike<number> | undefined, n: number): Uint32Array {
  if (given === undefined) {
    const ids = new Uint32Array(n);
    for (let i = 0; i < n; i++) ids[i] = i;
    return ids;
  }
  if (given === null || typeof given !== 'object' || typeof given.length !== 'number') {
    throw new ZGQError('INVALID_ARGUMENT', `ids must be a Uint32Array or an array of integers; got ${describe(given)}`);
  }
  if (given.length !== n) throw new ZGQError('INVALID_ARGUMENT', `ids has ${given.length} entries for ${n} vectors`);
  const ids = new Uint32Array(n);
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) {
    const id = given[i];
    if (!Number.isInteger(id) || id < 0 || id >= NO_ID) {
      throw new ZGQError('INVALID_ARGUMENT', `ids[${i}] must be an integer in [0, ${NO_ID - 1}]; got ${describeValue(id)}`);
    }
    if (seen.has(id)) throw new ZGQError('DUPLICATE_ID', `id ${id} appears more than once (again at ids[${i}])`);
    seen.add(id);
    ids[i] = id;
  }
  return ids;
}
/**
 * The queries a batch can search, as rows (unit length under cosine) with the batch position of
 * each, and the error of each one it cannot.
 */
export function searchableRows(queries: Float32Array, dim: number, cosine: boolean): { rows: Float32Array; from: number[]; errors: { query: number; error: ZGQError }[] } {
  const nq = queries.length / dim;
  const from: number[] = [];
  const errors: { query: number; error: ZGQError }[] = [];
  for (let q = 0; q < nq; q++) {
    const row = queries.subarray(q * dim, (q + 1) * dim);
    try {
      checkFinite(row, dim, 'query', q);
      if (cosine) normalizedCopy(row, dim, 'query', q);
      from.push(q);
    } catch (error) {
      if (!(error instanceof ZGQError)) throw error;
      errors.push({ query: q, error });
    }
  }
  return { rows: gatherRows(queries, dim, from), from, errors };
}

/** Rows `which` of x (dim values each), in that order, as one new flat array. */
export function gatherRows(x: Float32Array, dim: number, which: ArrayLike<number>): Float32Array {
  const rows = new Float32Array(which.length * dim);
  for (let r = 0; r < which.length; r++) rows.set(x.subarray(which[r] * dim, (which[r] + 1) * dim), r * dim);
  return rows;
}

/** Rows scaled to unit length; the norm in float64, so rows of float32 subnormals keep their direction. */
export function normalizedCopy(x: Float32Array, dim: number, what = 'vector', firstRow = 0): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += dim) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += x[i + j] * x[i + j];
    if (norm === 0) throw new ZGQError('INVALID_ARGUMENT', `${what} ${firstRow + i / dim} has zero length; cosine distance is undefined for it`);
    const inv = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[i + j] = x[i + j] * inv;
  }
  return out;
}

/**
 * Vectors as callers hold them: a flat row-major Float32Array[n * dim] (used as it is), a
 * Float64Array[n * dim], or an array of n rows (number[] or typed arrays of dim values each).
 */
export type Vectors = Float32Array | Float64Array | ReadonlyArray<ArrayLike<number>>;

/**
 * The rows as one flat Float32Array: the input itself when it is one, else a float32 copy (one
 * pass, 4 bytes per value). Values are checked after this conversion (a float64 value beyond
 * float32's range becomes Infinity and is refused there).
 */
export function flatRows(input: unknown, dim: number, what: string): Float32Array {
  if (input instanceof Float32Array) return input;
  if (input instanceof Float64Array) return Float32Array.from(input);
  if (!Array.isArray(input)) {
    throw new ZGQError('INVALID_ARGUMENT', `${what} must be a Float32Array of n * dim values, a Float64Array, or an array of rows; got ${describe(input)}`);
  }
  const out = new Float32Array(input.length * dim);
  for (let i = 0; i < input.length; i++) {
    const row: unknown = input[i];
    if (row === null || typeof row !== 'object' || typeof (row as ArrayLike<number>).length !== 'number') {
      throw new ZGQError('INVALID_ARGUMENT', `${what}[${i}] must be an array or typed array of ${dim} numbers; got ${describe(row)}`);
    }
    const values = row as ArrayLike<unknown>;
    if (values.length !== dim) throw new ZGQError('DIMENSION_MISMATCH', `${what}[${i}] has ${values.length} values; the index dim is ${dim}`);
    for (let j = 0; j < dim; j++) {
      const v = values[j];
      if (typeof v !== 'number') throw new ZGQError('INVALID_ARGUMENT', `${what}[${i}][${j}] must be a number; got ${describeValue(v)}`);
      out[i * dim + j] = v;
    }
  }
  return out;
}
