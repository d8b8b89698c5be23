/**
 * The rows a build reads: a flat float32 array, or the listed rows of one (a shard's part of the
 * caller's vectors). Builds read them a row or a block at a time into their arena, so a shard's
 * part is never gathered into a copy of its own (n * dim * 4 bytes more at the peak of a build).
 */
export class InputRows {
  /**
   * Rows of `data` (row-major, `dim` values each): the first `n` (default: all), or those listed in
   * `picked` (row i of the set is row picked[i] of data).
   */
  constructor(
    readonly data: Float32Array, readonly dim: number, readonly picked: Uint32Array | null = null, n = picked ? picked.length : Math.floor(data.length / dim),
  ) {
    this.n = n;
  }

  readonly n: number;

  /** Row i, a view of the data. */
  row(i: number): Float32Array {
    const r = this.picked ? this.picked[i] : i;
    return this.data.subarray(r * this.dim, (r + 1) * this.dim);
  }

  /** Rows [start, start + count) into `into` (count * dim values), one after another. */
  copy(start: number, count: number, into: Float32Array): void {
    const dim = this.dim;
    if (!this.picked) {
      into.set(this.data.subarray(start * dim, (start + count) * dim));
      return;
    }
    for (let i = 0; i < count; i++) into.set(this.row(start + i), i * dim);
  }

  /** The rows listed in `rows` into `into`, one after another. */
  copyListed(rows: ArrayLike<number>, count: number, into: Float32Array): void {
    for (let i = 0; i < count; i++) into.set(this.row(rows[i]), i * this.dim);
  }
}
