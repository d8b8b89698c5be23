/**
 * An index created empty and grown by add(): until there are enough vectors to train zones and
 * codebooks on (TRAIN_AT), the rows wait here, in JS memory, and searches scan them exactly. The
 * index trains once, on all the staged rows, when TRAIN_AT is reached, at save(), or at build().
 *
 * Layout: rows Float32Array[capacity * dim] (unit length under cosine), row i = ids[i]; the first n
 * in use, in the order added (a replaced id moves to the end, a removed one leaves no gap).
 */
import { PreparedFilter, type SearchFilter } from './filter.js';
import { dot, l2 } from './kernels/reference/distance.js';
import { NO_ID } from './ids.js';
import type { Metric } from './options.js';

/** Staged vectors that make an index train: 16 rows per PQ centroid, 64 zones. */
export const TRAIN_AT = 4096;


export class StagedRows {
  readonly dim: number;
  private rows: Float32Array;
  private ids: Uint32Array;
  private count = 0;
  /** Caller id -> row. */
  private readonly rowOf = new Map<number, number>();

  constructor(dim: number) {
    this.dim = dim;
    this.rows = new Float32Array(0);
    this.ids = new Uint32Array(0);
  }

  get n(): number {
    return this.count;
  }

  has(id: number): boolean {
    return this.rowOf.has(id);
  }

  /** Append validated rows under unique ids; an id already staged is replaced. */
  add(rows: Float32Array, ids: Uint32Array): void {
    this.remove(ids);
    const dim = this.dim;
    const need = this.count + ids.length;
    if (need > this.ids.length) {
      const capacity = Math.max(need, this.ids.length * 2, 64);
      const grownRows = new Float32Array(capacity * dim);
      grownRows.set(this.rows.subarray(0, this.count * dim));
      const grownIds = new Uint32Array(capacity);
      grownIds.set(this.ids.subarray(0, this.count));
      this.rows = grownRows;
      this.ids = grownIds;
    }
    this.rows.set(rows, this.count * dim);
    this.ids.set(ids, this.count);
    for (let i = 0; i < ids.length; i++) this.rowOf.set(ids[i], this.count + i);
    this.count = need;
  }

  /** Remove staged ids (others are skipped); returns how many were staged. */
  remove(ids: ArrayLike<number>): number {
    let removed = 0;
    for (let i = 0; i < ids.length; i++) {
      const row = this.rowOf.get(ids[i]);
      if (row === undefined) continue;
      // the last row fills the gap
      const last = this.count - 1;
      if (row !== last) {
        this.rows.copyWithin(row * this.dim, last * this.dim, (last + 1) * this.dim);
        this.ids[row] = this.ids[last];
        this.rowOf.set(this.ids[row], row);
      }
      this.rowOf.delete(ids[i]);
      this.count--;
      removed++;
    }
    return removed;
  }

  /** The staged row of `id` (a copy), or undefined. */
  row(id: number): Float32Array | undefined {
    const r = this.rowOf.get(id);
    return r === undefined ? undefined : this.rows.slice(r * this.dim, (r + 1) * this.dim);
  }

  /** A copy to change without changing this one. */
  clone(): StagedRows {
    const copy = new StagedRows(this.dim);
    const { rows, ids } = this.take();
    copy.add(rows, ids);
    return copy;
  }

  /** The staged rows and their ids (copies), in staging order. */
  take(): { rows: Float32Array; ids: Uint32Array } {
    return { rows: this.rows.slice(0, this.count * this.dim), ids: this.ids.slice(0, this.count) };
  }

  /**
   * Exact k nearest of `query` (unit length under cosine) among the staged rows the filter admits,
   * written at `offset` of the outputs as reported distances, nearest first; NO_ID / Infinity pad.
   */
  search(query: Float32Array, k: number, metric: Metric, filter: SearchFilter | undefined, outIds: Uint32Array, outDist: Float32Array, offset: number): void {
    const admit = filter === undefined ? null : admitting(filter);
    const dim = this.dim;
    // max-heap of the best k so far, as parallel arrays sorted at the end (k is small next to n here)
    const bestIds: number[] = [];
    const bestDist: number[] = [];
    for (let r = 0; r < this.count; r++) {
      const id = this.ids[r];
      if (admit && !admit(id)) continue;
      const d = metric === 'l2' ? l2(query, 0, this.rows, r * dim, dim) : 1 - dot(query, 0, this.rows, r * dim, dim);
      if (bestIds.length === k && !(d < bestDist[bestDist.length - 1])) continue;
      let at = bestIds.length === k ? k - 1 : bestIds.length;
      if (bestIds.length === k) {
        bestIds.pop();
        bestDist.pop();
      }
      while (at > 0 && (bestDist[at - 1] > d || (bestDist[at - 1] === d && bestIds[at - 1] > id))) at--;
      bestIds.splice(at, 0, id);
      bestDist.splice(at, 0, d);
    }
    for (let i = 0; i < k; i++) {
      outIds[offset + i] = i < bestIds.length ? bestIds[i] : NO_ID;
      outDist[offset + i] = i < bestIds.length ? bestDist[i] : Infinity;
    }
  }
}

/** The filter as a test on caller ids. */
function admitting(filter: SearchFilter): (id: number) => boolean {
  if (filter instanceof PreparedFilter) return admitting(filter.source);
  if (typeof filter === 'function') return (id) => filter(id) === true;
  const set = filter instanceof Set ? (filter as ReadonlySet<number>) : new Set(Array.from(filter as ArrayLike<number>));
  return (id) => set.has(id);
}
