// Product quantization kernels. Subspace j covers dims [o_j, o_{j+1}) with o_j = floor(j * dim / m),
// so any m <= dim works (lengths differ by at most one). Codebooks: f32[256 * dim]; subspace j's
// block starts at 256 * o_j floats and holds 256 rows of (o_{j+1} - o_j) floats.
// Lookup table (LUT): f32[m * 256], lut[j * 256 + c] = the query's partial distance to centroid c of
// subspace j. Codes: u8[n * m], row i = the m centroid indices of vector i.
// Plain-TypeScript twins live in src/kernels/reference/pq.ts.

import { maxAbs } from './distance';

/** LUT modes: 0 = squared L2; 1 = -dot (inner product); 2 = -2 dot (L2 on residuals, see search). */
export const LUT_L2: i32 = 0;
export const LUT_IP: i32 = 1;
export const LUT_RESIDUAL_L2: i32 = 2;
/** Largest magnitude of the 16-bit codebooks and query (PAIR_RANGE in src/pq.ts). */
const PAIR_RANGE: i32 = 2047;
/**
 * Longer subspaces could overflow the i32 sums (pairs * 2 * 2047² < 2^31): float32 for them.
 * MAX_PAIRED_LENGTH in src/pq.ts (pairCodebooks leaves the pairs out when only these remain).
 */
const MAX_PAIRED_LENGTH: i32 = 510;

// @ts-ignore: decorator
@inline
function subOffset(j: i32, dim: i32, m: i32): i32 {
  return <i32>((<i64>j * <i64>dim) / <i64>m);
}

/**
 * Fill the m x 256 lookup table for query q from the transposed codebooks: codebooksT holds, for
 * subspace j, len_j rows of 256 floats starting at 256 * o_j (centroidsT[d][c]); norms[j * 256 + c]
 * is |centroid|². SIMD runs across 4 centroids at a time:
 * L2: |q_j|² + |c|² - 2 <q_j, c>;  IP: -<q_j, c>;  residual L2: -2 <q_j, c>.
 * Subspaces of other than 4 dimensions take the 16-bit codebooks when codebooksQ != 0 (see
 * pairCodebooks in src/pq.ts; queryPairs: i32 scratch for ceil(len / 2) packed query pairs):
 * i32x4.dot_i16x8_s makes 8 multiply-adds per instruction, against 4 in two for float32, and the
 * table is the same to within 0.04 % of its range.
 */
export function pqLut(
  q: usize, codebooksT: usize, norms: usize, dim: i32, m: i32, mode: i32, out: usize,
  codebooksQ: usize, codebookQScale: f32, queryPairs: usize,
): void {
  const scale: f32 = mode == LUT_IP ? <f32>-1 : <f32>-2;
  // with 16-bit codebooks (other lengths than 4): the query to the same range, and what turns an
  // integer dot product back into scale * <q_j, c>
  let queryQScale: f32 = 0;
  let back = f32x4.splat(0);
  if (codebooksQ != 0) {
    const max = maxAbs(q, dim);
    if (max > 0) {
      queryQScale = <f32>PAIR_RANGE / max;
      back = f32x4.splat(scale / (queryQScale * codebookQScale));
    }
  }
  let pairRow = codebooksQ;
  for (let j = 0; j < m; j++) {
    const o = subOffset(j, dim, m);
    const len = subOffset(j + 1, dim, m) - o;
    const qs = q + (<usize>o << 2);
    const block = codebooksT + ((<usize>o << 8) << 2);
    const lut = out + ((<usize>j << 8) << 2);
    const nrm = norms + ((<usize>j << 8) << 2);
    const pairs = (len + 1) >> 1;
    const pairBase = pairRow;
    pairRow += <usize>pairs << 10;
    let qq: f32 = 0;
    for (let d = 0; d < len; d++) {
      const v = load<f32>(qs + (<usize>d << 2));
      qq += v * v;
    }
    const l2 = mode == LUT_L2;
    const qqv = f32x4.splat(qq);
    if (len == 4) {
      // the common case (m = dim / 4): the query's four coordinates stay in registers
      const s0 = f32x4.splat(scale * load<f32>(qs));
      const s1 = f32x4.splat(scale * load<f32>(qs, 4));
      const s2 = f32x4.splat(scale * load<f32>(qs, 8));
      const s3 = f32x4.splat(scale * load<f32>(qs, 12));
      // eight centroids per step: half the loop overhead (each back edge carries a stack check)
      for (let c = 0; c < 256; c += 8) {
        const co = <usize>c << 2;
        let a = f32x4.add(f32x4.mul(s0, v128.load(block + co)), f32x4.mul(s1, v128.load(block + co, 1024)));
        let b = f32x4.add(f32x4.mul(s0, v128.load(block + co, 16)), f32x4.mul(s1, v128.load(block + co, 1040)));
        a = f32x4.add(a, f32x4.add(f32x4.mul(s2, v128.load(block + co, 2048)), f32x4.mul(s3, v128.load(block + co, 3072))));
        b = f32x4.add(b, f32x4.add(f32x4.mul(s2, v128.load(block + co, 2064)), f32x4.mul(s3, v128.load(block + co, 3088))));
        if (l2) {
          a = f32x4.add(a, f32x4.add(qqv, v128.load(nrm + co)));
          b = f32x4.add(b, f32x4.add(qqv, v128.load(nrm + co, 16)));
        }
        v128.store(lut + co, a);
        v128.store(lut + co, b, 16);
      }
      continue;
    }
    if (codebooksQ != 0 && len <= MAX_PAIRED_LENGTH) {
      for (let p = 0; p < pairs; p++) {
        const lo = <i32>nearest<f32>(load<f32>(qs + (<usize>(2 * p) << 2)) * queryQScale);
        const hi = 2 * p + 1 < len ? <i32>nearest<f32>(load<f32>(qs + (<usize>(2 * p + 1) << 2)) * queryQScale) : 0;
        store<i32>(queryPairs + (<usize>p << 2), (lo & 0xffff) | (hi << 16));
      }
      for (let c = 0; c < 256; c += 16) {
        const co = <usize>c << 2;
        let a0 = i32x4.splat(0);
        let a1 = i32x4.splat(0);
        let a2 = i32x4.splat(0);
        let a3 = i32x4.splat(0);
        let row = pairBase + co;
        for (let p = 0; p < pairs; p++) {
          const s = i32x4.splat(load<i32>(queryPairs + (<usize>p << 2)));
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(s, v128.load(row)));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(s, v128.load(row, 16)));
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(s, v128.load(row, 32)));
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(s, v128.load(row, 48)));
          row += 1024;
        }
        let t0 = f32x4.mul(f32x4.convert_i32x4_s(a0), back);
        let t1 = f32x4.mul(f32x4.convert_i32x4_s(a1), back);
        let t2 = f32x4.mul(f32x4.convert_i32x4_s(a2), back);
        let t3 = f32x4.mul(f32x4.convert_i32x4_s(a3), back);
        if (l2) {
          t0 = f32x4.add(t0, f32x4.add(qqv, v128.load(nrm + co)));
          t1 = f32x4.add(t1, f32x4.add(qqv, v128.load(nrm + co, 16)));
          t2 = f32x4.add(t2, f32x4.add(qqv, v128.load(nrm + co, 32)));
          t3 = f32x4.add(t3, f32x4.add(qqv, v128.load(nrm + co, 48)));
        }
        v128.store(lut + co, t0);
        v128.store(lut + co, t1, 16);
        v128.store(lut + co, t2, 32);
        v128.store(lut + co, t3, 48);
      }
      continue;
    }
    // other lengths: 16 centroids per step in four independent sums (one sum at a time waits on
    // each add: with the 12-13-dim subspaces of 784-d data, the table was half of a query's time)
    const zero = f32x4.splat(0);
    for (let c = 0; c < 256; c += 16) {
      const co = <usize>c << 2;
      let a0 = l2 ? f32x4.add(qqv, v128.load(nrm + co)) : zero;
      let a1 = l2 ? f32x4.add(qqv, v128.load(nrm + co, 16)) : zero;
      let a2 = l2 ? f32x4.add(qqv, v128.load(nrm + co, 32)) : zero;
      let a3 = l2 ? f32x4.add(qqv, v128.load(nrm + co, 48)) : zero;
      let row = block + co;
      for (let d = 0; d < len; d++) {
        const s = f32x4.splat(scale * load<f32>(qs + (<usize>d << 2)));
        a0 = f32x4.add(a0, f32x4.mul(s, v128.load(row)));
        a1 = f32x4.add(a1, f32x4.mul(s, v128.load(row, 16)));
        a2 = f32x4.add(a2, f32x4.mul(s, v128.load(row, 32)));
        a3 = f32x4.add(a3, f32x4.mul(s, v128.load(row, 48)));
        row += 1024;
      }
      v128.store(lut + co, a0);
      v128.store(lut + co, a1, 16);
      v128.store(lut + co, a2, 32);
      v128.store(lut + co, a3, 48);
    }
  }
}

/**
 * Approximate distance of one code row: the sum of its m table entries. Byte loads with four
 * accumulators measured 12 ns per 32-byte code against 15 ns for unpacking 32-bit words.
 */
// @ts-ignore: decorator
@inline
export function adc(lut: usize, code: usize, m: i32): f32 {
  let s0: f32 = 0;
  let s1: f32 = 0;
  let s2: f32 = 0;
  let s3: f32 = 0;
  let table = lut;
  let p = code;
  const end4 = code + <usize>(m & ~3);
  while (p < end4) {
    s0 += load<f32>(table + (<usize>load<u8>(p) << 2));
    s1 += load<f32>(table + (<usize>load<u8>(p, 1) << 2), 1024);
    s2 += load<f32>(table + (<usize>load<u8>(p, 2) << 2), 2048);
    s3 += load<f32>(table + (<usize>load<u8>(p, 3) << 2), 3072);
    p += 4;
    table += 4096;
  }
  const end = code + <usize>m;
  while (p < end) {
    s0 += load<f32>(table + (<usize>load<u8>(p) << 2));
    p++;
    table += 1024;
  }
  return (s0 + s1) + (s2 + s3);
}

/** out[i] = adc(codes row ids[i]) for a list of row ids. */
export function adcByIds(lut: usize, codes: usize, m: i32, ids: usize, count: i32, out: usize): void {
  for (let i = 0; i < count; i++) {
    const id = load<u32>(ids + (<usize>i << 2));
    store<f32>(out + (<usize>i << 2), adc(lut, codes + <usize>id * <usize>m, m));
  }
}
