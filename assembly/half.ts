// Half-precision (IEEE 754 binary16) storage of the re-ranking vectors: half the bytes of float32,
// with 11 significant bits (relative error <= 2^-11 from 2^-14 to 65504; whole numbers up to 2048
// are exact). Below 2^-14 only an absolute 2^-25 is kept: fitsHalf (src/persist.ts) keeps float32
// for data whose rows that would move by more than 2^-11 of their length.
// WebAssembly SIMD has no half-float instructions, so decoding is bit arithmetic: move the
// exponent and mantissa up by 13 bits and rescale by 2^112 with one float multiply, which also
// turns half subnormals and zero into the right float32 values. Plain twins: src/kernels/reference/half.ts.

import { METRIC_L2, maxAbs } from './distance';

const MAGIC: f32 = reinterpret<f32>(0x77800000); // 2^112

// @ts-ignore: decorator
@inline
export function decode4(h: v128): v128 {
  // h: four halves sign-extended to i32 lanes. Shifted up by 13, the exponent and mantissa sit
  // where float32 keeps them and the sign bit lands in bits 28..31: keep bit 31 and bits 13..27,
  // and one multiply by 2^112 rebias the exponent (and turn half subnormals into float32 normals).
  return f32x4.mul(v128.and(i32x4.shl(h, 13), i32x4.splat(0x8fffe000)), f32x4.splat(MAGIC));
}

// @ts-ignore: decorator
@inline
export function decodeHalf(h: u32): f32 {
  const magnitude = reinterpret<f32>((h & 0x7fff) << 13) * MAGIC;
  return reinterpret<f32>(reinterpret<u32>(magnitude) | ((h & 0x8000) << 16));
}

/** Squared L2 (metric 0) or -dot (metric 1) between a float32 query and a half-precision row. */
// @ts-ignore: decorator
@inline
export function distanceHalf(q: usize, x: usize, dim: i32, metric: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let i: i32 = 0;
  const l2 = metric == METRIC_L2;
  for (; i + 8 <= dim; i += 8) {
    const h = v128.load(x + (<usize>i << 1));
    const lo = decode4(i32x4.extend_low_i16x8_s(h));
    const hi = decode4(i32x4.extend_high_i16x8_s(h));
    const qlo = v128.load(q + (<usize>i << 2));
    const qhi = v128.load(q + (<usize>i << 2), 16);
    if (l2) {
      const d0 = f32x4.sub(qlo, lo);
      const d1 = f32x4.sub(qhi, hi);
      acc0 = f32x4.add(acc0, f32x4.mul(d0, d0));
      acc1 = f32x4.add(acc1, f32x4.mul(d1, d1));
    } else {
      acc0 = f32x4.add(acc0, f32x4.mul(qlo, lo));
      acc1 = f32x4.add(acc1, f32x4.mul(qhi, hi));
    }
  }
  const acc = f32x4.add(acc0, acc1);
  let sum: f32 =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < dim; i++) {
    const v = decodeHalf(<u32>load<u16>(x + (<usize>i << 1)));
    const qv = load<f32>(q + (<usize>i << 2));
    if (l2) sum += (qv - v) * (qv - v);
    else sum += qv * v;
  }
  return l2 ? sum : -sum;
}

/** Largest query magnitude scaleQueryForHalf accepts: beyond it, q * 2^112 could overflow float32. */
const SCALED_QUERY_MAX: f32 = 32768;

/**
 * q * 2^112 into out (dim floats), for dotHalfScaled; false (out untouched) when some |q_i| is too
 * large for that, and the caller must decode rows in full instead.
 */
export function scaleQueryForHalf(q: usize, dim: i32, out: usize): bool {
  if (!(maxAbs(q, dim) < SCALED_QUERY_MAX)) return false;
  for (let i = 0; i < dim; i++) store<f32>(out + (<usize>i << 2), load<f32>(q + (<usize>i << 2)) * MAGIC);
  return true;
}

/**
 * <q, x> for a half row x, given qScaled = q * 2^112 (scaleQueryForHalf): each half is widened to
 * float32 bits without the rescale (its value times 2^-112), which the scaled query puts back.
 * Two operations fewer per four values than decode4, and the graph walk on exact distances spends
 * most of its time here.
 */
// @ts-ignore: decorator
@inline
export function dotHalfScaled(qScaled: usize, x: usize, dim: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  const mask = i32x4.splat(0x8fffe000);
  let i: i32 = 0;
  for (; i + 8 <= dim; i += 8) {
    const h = v128.load(x + (<usize>i << 1));
    const lo = v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13), mask);
    const hi = v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13), mask);
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(qScaled + (<usize>i << 2)), lo));
    acc1 = f32x4.add(acc1, f32x4.mul(v128.load(qScaled + (<usize>i << 2), 16), hi));
  }
  const acc = f32x4.add(acc0, acc1);
  let sum: f32 =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < dim; i++) {
    const h = <u32>load<u16>(x + (<usize>i << 1));
    sum += load<f32>(qScaled + (<usize>i << 2)) * reinterpret<f32>(((h & 0x7fff) << 13) | ((h & 0x8000) << 16));
  }
  return sum;
}

/** out[i] = |row i|² for the half rows [from, to) (the L2 walk's dot-product form needs them). */
export function halfRowNorms(vectors: usize, from: i32, to: i32, dim: i32, out: usize): void {
  for (let r = from; r < to; r++) {
    const row = vectors + <usize>r * (<usize>dim << 1);
    let acc = f32x4.splat(0);
    let i: i32 = 0;
    for (; i + 8 <= dim; i += 8) {
      const h = v128.load(row + (<usize>i << 1));
      const lo = decode4(i32x4.extend_low_i16x8_s(h));
      const hi = decode4(i32x4.extend_high_i16x8_s(h));
      acc = f32x4.add(acc, f32x4.add(f32x4.mul(lo, lo), f32x4.mul(hi, hi)));
    }
    let sum: f32 = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    for (; i < dim; i++) {
      const v = decodeHalf(<u32>load<u16>(row + (<usize>i << 1)));
      sum += v * v;
    }
    store<f32>(out + (<usize>r << 2), sum);
  }
}

/**
 * Encode `count` float32 values to half precision, rounding to nearest, ties to even. Values must
 * lie within ±65504; smaller than half's normal range rounds to subnormals or zero (the caller
 * checks both with fitsHalf). In place (dst == src) works: value i is read before, and written at
 * or below, bytes of values already read.
 */
export function encodeHalf(src: usize, dst: usize, count: i32): void {
  for (let i = 0; i < count; i++) {
    const bits = reinterpret<u32>(load<f32>(src + (<usize>i << 2)));
    const sign = (bits >>> 16) & 0x8000;
    const exp = <i32>((bits >>> 23) & 0xff) - 127 + 15;
    let mant = bits & 0x7fffff;
    let h: u32;
    if (exp >= 31) {
      h = sign | 0x7c00; // out of range: infinity (never reached for checked input)
    } else if (exp <= 0) {
      if (exp < -10) {
        h = sign;
      } else {
        // subnormal: shift the mantissa with its implicit bit, round to nearest even
        mant |= 0x800000;
        const shift = <u32>(14 - exp);
        const half: u32 = (<u32>1) << (shift - 1);
        let m = mant >>> shift;
        const rest: u32 = mant & (((<u32>1) << shift) - 1);
        if (rest > half || (rest == half && (m & 1) != 0)) m++;
        h = sign | m;
      }
    } else {
      let m = mant >>> 13;
      const rest = mant & 0x1fff;
      let e = <u32>exp;
      if (rest > 0x1000 || (rest == 0x1000 && (m & 1) != 0)) {
        m++;
        if (m == 0x400) {
          m = 0;
          e++;
        }
      }
      h = e >= 31 ? sign | 0x7c00 : sign | (e << 10) | m;
    }
    store<u16>(dst + (<usize>i << 1), <u16>h);
  }
}

/** Decode `count` binary16 values at src to float32 at dst (eight at a time, then one by one). */
export function decodeHalfBlock(src: usize, dst: usize, count: i32): void {
  let i: i32 = 0;
  for (; i + 8 <= count; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), decode4(i32x4.extend_low_i16x8_s(h)));
    v128.store(dst + (<usize>i << 2), decode4(i32x4.extend_high_i16x8_s(h)), 16);
  }
  for (; i < count; i++) store<f32>(dst + (<usize>i << 2), decodeHalf(load<u16>(src + (<usize>i << 1))));
}
