/**
 * The store behind every streamed vector reader (JSON, CSV, Parquet, Arrow): rows as they arrive,
 * in Float32Array blocks of up to BLOCK_VALUES values, joined once at the end. n rows cost
 * 4 * dim * n bytes while reading and 8 * dim * n while finish() copies; a single array doubling as
 * it fills would copy about as much in all but peak at 12 * dim * n (the old array, the new one
 * twice its size, then the trim to size).
 */
import { ZGQError } from '../errors.js';
import { MAX_ID } from './npy.js';

/** Vectors read from a file: `n` rows of `dim` floats, row-major, and ids when the file carries them. */
export interface VectorRows {
  /** Float32Array[n * dim], row-major; its own buffer, of exactly the rows read. */
  data: Float32Array;
  n: number;
  /** Values per row; 0 for a file without rows. */
  dim: number;
  /** Uint32Array[n]: the ids given in the file (a JSON "id", an `id` column), one per row, or null. */
  ids: Uint32Array | null;
}

/** Values per full block (4 MiB). */
const BLOCK_VALUES = 1 << 20;

export class RowBlocks {
  /** Full blocks, in row order. */
  private blocks: Float32Array[] = [];
  /** The block being filled: rows [blockStart, n) of the file, row n at `offset`. */
  block = new Float32Array(0);
  private blockStart = 0;
  /** Uint32Array[capacity >= n]: the rows' ids, doubling as it fills; used only when rows have ids. */
  private ids = new Uint32Array(0);
  private hasIds = false;
  /** Rows committed. */
  n = 0;

  constructor(readonly dim: number) {
    if (!(dim > 0)) throw new RangeError(`RowBlocks: dim must be > 0; got ${dim}`);
  }

  /**
   * Where the next row goes: `block[offset .. offset + dim)`. Fill it, then commit(). A row that
   * fails its checks is simply not committed; the next call returns the same place.
   */
  next(): number {
    if ((this.n - this.blockStart) * this.dim === this.block.length) {
      if (this.block.length > 0) this.blocks.push(this.block);
      // the first blocks are small (a query file of one row stays small), then BLOCK_VALUES
      const rows = Math.min(Math.max(1, Math.floor(BLOCK_VALUES / this.dim)), 64 * 2 ** Math.min(this.blocks.length, 24));
      this.block = new Float32Array(rows * this.dim);
      this.blockStart = this.n;
    }
    return (this.n - this.blockStart) * this.dim;
  }

  /** Commit the row filled at next()'s place, with its id when the file gives ids. */
  commit(id?: number): void {
    if (id !== undefined) {
      if (this.n === this.ids.length) {
        const grown = new Uint32Array(Math.max(1024, this.n * 2));
        grown.set(this.ids);
        this.ids = grown;
      }
      this.ids[this.n] = id;
      this.hasIds = true;
    }
    this.n++;
  }

  /** The rows committed, in arrays of their exact size; the blocks are released. */
  finish(): VectorRows {
    const data = new Float32Array(this.n * this.dim);
    let offset = 0;
    for (const block of this.blocks) {
      data.set(block, offset);
      offset += block.length;
    }
    data.set(this.block.subarray(0, data.length - offset), offset);
    this.blocks = [];
    this.block = new Float32Array(0);
    return { data, n: this.n, dim: this.dim, ids: this.hasIds ? this.ids.slice(0, this.n) : null };
  }
}

/**
 * Whether `given` was a finite number that became ±Infinity when `stored` as float32: past the
 * float32 range, which the readers refuse naming the value (NaN and ±Infinity given pass on to the
 * index's own check).
 */
export function pastFloat32(stored: number, given: number): boolean {
  return (stored === Infinity || stored === -Infinity) && Number.isFinite(given);
}

/** A file without rows: no dimension is known, so nothing was stored. */
export function noRows(): VectorRows {
  return { data: new Float32Array(0), n: 0, dim: 0, ids: null };
}

/**
 * A row id from a file, checked: an integer in [0, MAX_ID] (a bigint from an int64 column too).
 * String ids are refused with what to do instead (a collection maps them: src/collection.ts).
 * @throws ZGQError('INVALID_ARGUMENT') naming `name`, `where` and `what` (how the file calls the id).
 */
export function checkedId(id: unknown, name: string, where: string, what = 'id'): number {
  if (typeof id === 'string') {
    throw new ZGQError(
      'INVALID_ARGUMENT',
      `${name}: ${where}: ${what} is the string ${JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}...` : id)}; an index takes ` +
        `integer ids in [0, ${MAX_ID}] (or leave the ids out and pass --ids <file> or --first-id <n>); documents with string ids go in a collection: zgq collection upsert`,
    );
  }
  const v = typeof id === 'bigint' && id >= 0n && id <= BigInt(MAX_ID) ? Number(id) : id;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ID) {
    const shown = typeof id === 'bigint' ? id.toString() : JSON.stringify(id);
    throw new ZGQError('INVALID_ARGUMENT', `${name}: ${where}: ${what} ${shown} is not an integer in [0, ${MAX_ID}]`);
  }
  return v;
}
