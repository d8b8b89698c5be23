import { createKernels } from './src/kernels/wasm.ts';
const k = createKernels();
const { arena } = k;
const n = 100000, pairs = 25, blocks = n / 16;
const codes = arena.alloc(blocks * pairs * 16), lut = arena.alloc(pairs * 32), out = arena.alloc(n * 2);
const c = arena.u8(codes, blocks * pairs * 16); for (let i = 0; i < c.length; i++) c[i] = (i * 2654435761) >>> 24;
const l = arena.u8(lut, pairs * 32); for (let i = 0; i < l.length; i++) l[i] = (i * 7919) % 256;
// twin check
const o = arena.u16(out, n);
k.k.fastScanBlocks(lut, codes, blocks, pairs, out);
let bad = 0;
for (let r = 0; r < n; r++) { const b = r >> 4, rr = r & 15; let s = 0; for (let p = 0; p < pairs; p++) { const byte = c[(b * pairs + p) * 16 + rr]; s += l[p * 32 + (byte & 15)] + l[p * 32 + 16 + (byte >> 4)]; } if (s !== o[r]) bad++; }
console.log('mismatches', bad);
for (let pass = 0; pass < 3; pass++) { const t = performance.now(); for (let q = 0; q < 200; q++) k.k.fastScanBlocks(lut, codes, blocks, pairs, out); console.log('ms per scan of 100K x 50 subq', ((performance.now() - t) / 200).toFixed(3)); }
