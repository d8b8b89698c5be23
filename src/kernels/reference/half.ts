/** Plain-TypeScript twins of assembly/half.ts: binary16 decode/encode by the definition. */

/** The value of half-precision bits h. */
export function decodeHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Nearest half (ties to even) of a float32 value, as bits. */
export function encodeHalf(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === 0) return sign;
  if (a >= 65520) return sign | 0x7c00;
  // candidates: the two halves around a, pick the nearer, ties to the even mantissa
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--;
  if (2 ** (exp + 1) <= a) exp++;
  const e = Math.max(exp, -14);
  const step = 2 ** (e - 10);
  const q = a / step;
  let m = Math.floor(q);
  const frac = q - m;
  if (frac > 0.5 || (frac === 0.5 && m % 2 === 1)) m++;
  // m counts steps of the binade; re-normalise
  let bits: number;
  if (exp < -14) bits = m; // subnormal (m may reach 1024 = the smallest normal, which is the same bits)
  else {
    let biased = e + 15;
    let mant = m - 1024;
    if (mant >= 1024) {
      mant -= 1024;
      biased++;
    }
    bits = biased >= 31 ? 0x7c00 : (biased << 10) | mant;
  }
  return sign | bits;
}

/** Squared L2 (metric 0) or -dot (metric 1) between a float query and a half row. */
export function distanceHalf(q: Float32Array, x: Uint16Array, xo: number, dim: number, metric: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) {
    const v = decodeHalf(x[xo + i]);
    s += metric === 0 ? (q[i] - v) ** 2 : q[i] * v;
  }
  return metric === 0 ? s : -s;
}

/** |x|² of the half row at xo (halfRowNorms). */
export function rowNormHalf(x: Uint16Array, xo: number, dim: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) s += decodeHalf(x[xo + i]) ** 2;
  return s;
}

/**
 * The exact walk's distance to a half row (walkExact with a scaled query): |x|² - 2 <q, x> under
 * L2 (the squared distance less |q|²), -<q, x> under inner product.
 */
export function walkDistanceHalf(q: Float32Array, x: Uint16Array, xo: number, dim: number, metric: number): number {
  let dot = 0;
  for (let i = 0; i < dim; i++) dot += q[i] * decodeHalf(x[xo + i]);
  return metric === 0 ? rowNormHalf(x, xo, dim) - 2 * dot : -dot;
}
