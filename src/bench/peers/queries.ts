/**
 * Query rows prepared before any timed loop, so the loops allocate nothing of their own.
 */

/** Row views of a flat row-major array (no copies). */
export function queryViews(queries: Float32Array, n: number, dim: number): Float32Array[] {
  const views: Float32Array[] = [];
  for (let q = 0; q < n; q++) views.push(queries.subarray(q * dim, (q + 1) * dim));
  return views;
}
