/**
 * Plain-TypeScript twin of the GPU's range scan (src/gpu/scan.ts): for each query, the k nearest
 * rows among the rows of its ranges, removed rows skipped, ordered by distance then row; distances
 * as the kernels report them (squared L2, or -q·x under inner product), summed in float32 in
 * dimension order.
 */
import { NO_ID } from '../../ids.js';
import { METRIC_IP } from '../wasm.js';
import { decodeHalf } from './half.js';

export function rangeTopK(
  rows: Float32Array | Uint16Array, half: boolean, dim: number, metric: number,
  queries: Float32Array, nq: number, ranges: Uint32Array, per: number, k: number, removed: Uint8Array | null,
): { rows: Uint32Array; distances: Float32Array } {
  const value = half ? (i: number) => decodeHalf(rows[i]) : (i: number) => rows[i];
  const out = { rows: new Uint32Array(nq * k).fill(NO_ID), distances: new Float32Array(nq * k).fill(Infinity) };
  const f = Math.fround;
  for (let q = 0; q < nq; q++) {
    const found: [number, number][] = [];
    for (let r = 0; r < per; r++) {
      const start = ranges[(q * per + r) * 2];
      const end = ranges[(q * per + r) * 2 + 1];
      for (let row = start; row < end; row++) {
        if (removed && (removed[row >> 3] >> (row & 7)) & 1) continue;
        let acc = 0;
        for (let j = 0; j < dim; j++) {
          const qv = queries[q * dim + j];
          const v = value(row * dim + j);
          acc = metric === METRIC_IP ? f(acc - f(qv * v)) : f(acc + f(f(qv - v) * f(qv - v)));
        }
        found.push([acc, row]);
      }
    }
    found.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let i = 0; i < Math.min(k, found.length); i++) {
      out.rows[q * k + i] = found[i][1];
      out.distances[q * k + i] = found[i][0];
    }
  }
  return out;
}
