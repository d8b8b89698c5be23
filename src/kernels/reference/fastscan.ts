/** Plain-TypeScript twins of assembly/fastscan.ts, by the definition. */

/** Sum of the u8 table entries of every row's 4-bit codes (blocked layout of assembly/fastscan.ts). */
export function fastScanBlocks(lut: Uint8Array, codes: Uint8Array, blocks: number, pairs: number, out: Uint16Array): void {
  for (let row = 0; row < blocks * 16; row++) {
    const block = row >> 4;
    let sum = 0;
    for (let p = 0; p < pairs; p++) {
      const byte = codes[(block * pairs + p) * 16 + (row & 15)];
      sum += lut[p * 32 + (byte & 15)] + lut[p * 32 + 16 + (byte >> 4)];
    }
    out[row] = sum;
  }
}

/** The `count` smallest of the first n sums (ties at the cut in no set order: compare the values). */
export function smallestSums(sums: Uint16Array, n: number, count: number): number[] {
  return Array.from(sums.subarray(0, n)).sort((a, b) => a - b).slice(0, Math.min(count, n));
}
