// Fast scan of 4-bit PQ codes: the approximate distance of every row from a lookup table of u8
// entries, 16 rows at a time through i8x16.swizzle (a 16-entry table lookup per byte lane), summed
// in u16 lanes, and the rows of the `count` smallest sums kept. Plain twin:
// src/kernels/reference/fastscan.ts.
//
// Codes are blocked: block b holds rows [16 b, 16 b + 16); within it, byte p * 16 + r holds row r's
// codes of subquantizers 2p (low nibble) and 2p + 1 (high nibble), for p in [0, pairs). The table
// holds 16 u8 entries per subquantizer (2 * pairs of them, 16 bytes each). Sums never overflow:
// 2 * pairs * 255 < 65536.

/**
 * The ids of `count` rows of [0, n) with the smallest sums (ties at the cut in no set order) into
 * ids, their sums into sums (u16); returns how many (min(count, n)), in no set order. ids and sums
 * hold `capacity` > count entries: rows below the running threshold are appended, and a full buffer
 * is cut back to its `count` smallest, which lowers the threshold, so that after the first blocks
 * few rows pass the SIMD comparison. `lanes`: 32 bytes of scratch.
 */
export function fastScanTop(
  lut: usize, codes: usize, blocks: i32, pairs: i32, n: i32, count: i32,
  ids: usize, sums: usize, capacity: i32, lanes: usize,
): i32 {
  const lowMask = i8x16.splat(0x0f);
  const evenMask = i16x8.splat(0x00ff);
  const blockBytes = <usize>pairs << 4;
  let size: i32 = 0;
  let threshold: i32 = 0x10000; // rows below it are kept; none is cut until the buffer first fills
  for (let b = 0; b < blocks; b++) {
    const block = codes + <usize>b * blockBytes;
    // rows 0, 2, 4, ... in `even` (their byte is the low one of each u16 lane), rows 1, 3, ... in `odd`
    let even = i16x8.splat(0);
    let odd = i16x8.splat(0);
    for (let p = 0; p < pairs; p++) {
      const c = v128.load(block + (<usize>p << 4));
      const lo = i8x16.swizzle(v128.load(lut + (<usize>p << 5)), v128.and(c, lowMask));
      const hi = i8x16.swizzle(v128.load(lut + (<usize>p << 5), 16), v128.and(i16x8.shr_u(c, 4), lowMask));
      even = i16x8.add(even, i16x8.add(v128.and(lo, evenMask), v128.and(hi, evenMask)));
      odd = i16x8.add(odd, i16x8.add(i16x8.shr_u(lo, 8), i16x8.shr_u(hi, 8)));
    }
    // back to row order: rows 0..7, then 8..15
    const first = v128.shuffle<i16>(even, odd, 0, 8, 1, 9, 2, 10, 3, 11);
    const second = v128.shuffle<i16>(even, odd, 4, 12, 5, 13, 6, 14, 7, 15);
    let mask: i32 = 0xffff;
    if (threshold <= 0xffff) {
      const t = i16x8.splat(<i16>threshold);
      mask = i16x8.bitmask(i16x8.lt_u(first, t)) | (i16x8.bitmask(i16x8.lt_u(second, t)) << 8);
      if (mask == 0) continue;
    }
    v128.store(lanes, first);
    v128.store(lanes, second, 16);
    const row0 = b << 4;
    while (mask != 0) {
      const r = ctz(mask);
      mask &= mask - 1;
      if (row0 + r >= n) break;
      store<u32>(ids + (<usize>size << 2), row0 + r);
      store<u16>(sums + (<usize>size << 1), load<u16>(lanes + (<usize>r << 1)));
      if (++size == capacity) {
        size = keepSmallest(ids, sums, size, count);
        threshold = <i32>maxSum(sums, size);
      }
    }
  }
  return size > count ? keepSmallest(ids, sums, size, count) : size;
}

/** Reorder the first `size` (id, sum) entries so that the `count` smallest sums come first; returns count. */
function keepSmallest(ids: usize, sums: usize, size: i32, count: i32): i32 {
  // quickselect (Hoare partition, middle pivot) on the sums, ids moved alongside
  let lo: i32 = 0;
  let hi: i32 = size - 1;
  while (lo < hi) {
    const pivot = load<u16>(sums + (<usize>((lo + hi) >> 1) << 1));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (load<u16>(sums + (<usize>i << 1)) < pivot) i++;
      while (load<u16>(sums + (<usize>j << 1)) > pivot) j--;
      if (i <= j) {
        const si = load<u16>(sums + (<usize>i << 1));
        store<u16>(sums + (<usize>i << 1), load<u16>(sums + (<usize>j << 1)));
        store<u16>(sums + (<usize>j << 1), si);
        const ii = load<u32>(ids + (<usize>i << 2));
        store<u32>(ids + (<usize>i << 2), load<u32>(ids + (<usize>j << 2)));
        store<u32>(ids + (<usize>j << 2), ii);
        i++;
        j--;
      }
    }
    // [lo, j] <= pivot <= [i, hi]: go on in the part holding position count - 1
    if (count - 1 <= j) hi = j;
    else if (count - 1 >= i) lo = i;
    else break;
  }
  return count;
}

function maxSum(sums: usize, size: i32): u16 {
  let max: u16 = 0;
  for (let i = 0; i < size; i++) {
    const s = load<u16>(sums + (<usize>i << 1));
    if (s > max) max = s;
  }
  return max;
}
