/** Plain-TypeScript twins of assembly/pq.ts, on the plain (untransposed) codebook layout of src/pq.ts. */
import { subspaceOffset, PQ_CENTROIDS } from '../../pq.js';

export const LUT_L2 = 0;
export const LUT_IP = 1;
export const LUT_RESIDUAL_L2 = 2;

/** lut[j * 256 + c] = partial distance of q's subspace j to centroid c of that subspace. */
export function pqLut(q: Float32Array, codebooks: Float32Array, dim: number, m: number, mode: number, out: Float32Array): void {
  for (let j = 0; j < m; j++) {
    const o = subspaceOffset(j, dim, m);
    const len = subspaceOffset(j + 1, dim, m) - o;
    for (let c = 0; c < PQ_CENTROIDS; c++) {
      const base = PQ_CENTROIDS * o + c * len;
      let l2 = 0;
      let dot = 0;
      for (let d = 0; d < len; d++) {
        const diff = q[o + d] - codebooks[base + d];
        l2 += diff * diff;
        dot += q[o + d] * codebooks[base + d];
      }
      out[j * PQ_CENTROIDS + c] = mode === LUT_L2 ? l2 : mode === LUT_IP ? -dot : -2 * dot;
    }
  }
}

export function adc(lut: Float32Array, codes: Uint8Array, row: number, m: number): number {
  let s = 0;
  for (let j = 0; j < m; j++) s += lut[j * PQ_CENTROIDS + codes[row * m + j]];
  return s;
}

export function adcByIds(lut: Float32Array, codes: Uint8Array, m: number, ids: Uint32Array, count: number, out: Float32Array): void {
  for (let i = 0; i < count; i++) out[i] = adc(lut, codes, ids[i], m);
}
