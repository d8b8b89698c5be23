// WebAssembly kernels against their plain-TypeScript twins (src/kernels/reference/), on integer
// data (results must match exactly) and random floats (relative tolerance), at dimensions that
// are and are not multiples of the SIMD width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKernels, type Kernels, METRIC_IP, METRIC_L2, LUT_IP, LUT_L2, LUT_RESIDUAL_L2 } from '../src/kernels/wasm.js';
import * as ref from '../src/kernels/reference/distance.js';
import * as refPq from '../src/kernels/reference/pq.js';
import * as refSearch from '../src/kernels/reference/search.js';
import { MAX_PAIRED_LENGTH, pairCodebooks, subspaceOffset, transposeCodebooks, PQ_CENTROIDS } from '../src/pq.js';
import * as refHalf from '../src/kernels/reference/half.js';
import * as refMutate from '../src/kernels/reference/mutate.js';
import * as refFastScan from '../src/kernels/reference/fastscan.js';
import { Rng } from '../src/random.js';
import { allocBuildContext, BCTX, linkScratchBytes } from '../src/graph.js';

const DIMS = [1, 3, 4, 7, 16, 17, 128, 129];
const METRICS = [METRIC_L2, METRIC_IP];

function randomData(rng: Rng, count: number, integer: boolean): Float32Array {
  const x = new Float32Array(count);
  for (let i = 0; i < count; i++) x[i] = integer ? rng.int(21) - 10 : rng.normal() * 3;
  return x;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, exact: boolean, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (exact) assert.equal(actual[i] + 0, expected[i] + 0, `${what}[${i}]`); // + 0 folds -0 into 0
    else {
      const tol = 1e-4 * Math.max(1, Math.abs(expected[i]));
      assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
    }
  }
}

function withKernels(fn: (k: Kernels) => void): void {
  fn(createKernels());
}

test('distanceBlock and distanceByIds match the reference', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(1);
    for (const dim of DIMS) for (const metric of METRICS) for (const integer of [true, false]) {
      const n = 37;
      const rows = randomData(rng, n * dim, integer);
      const q = randomData(rng, dim, integer);
      const mark = arena.mark();
      const rowsPtr = arena.allocFrom(rows);
      const qPtr = arena.allocFrom(q);
      const outPtr = arena.alloc(n * 4);
      k.distanceBlock(qPtr, rowsPtr, n, dim, metric, outPtr);
      const expected = new Float32Array(n);
      ref.distanceBlock(q, rows, n, dim, metric, expected);
      close(arena.f32(outPtr, n), expected, integer, `distanceBlock dim=${dim} metric=${metric}`);

      const ids = Uint32Array.from({ length: 11 }, () => rng.int(n));
      const idsPtr = arena.allocFrom(ids);
      k.distanceByIds(qPtr, rowsPtr, idsPtr, ids.length, dim, metric, outPtr);
      const exp2 = new Float32Array(ids.length);
      ref.distanceByIds(q, rows, ids, ids.length, dim, metric, exp2);
      close(arena.f32(outPtr, ids.length), exp2, integer, `distanceByIds dim=${dim}`);
      arena.release(mark);
    }
  });
});

test('nearestRows and nearestRowsT agree with the reference', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(2);
    for (const dim of DIMS) {
      const n = 51; // odd: the two-row path of nearestRowsT and its one-row tail
      const kc = 13;
      const x = randomData(rng, n * dim, true);
      const c = randomData(rng, kc * dim, true);
      const mark = arena.mark();
      const xPtr = arena.allocFrom(x);
      const cPtr = arena.allocFrom(c);
      const nPtr = arena.alloc(n * 4);
      const dPtr = arena.alloc(n * 4);
      const expN = new Uint32Array(n);
      const expD = new Float32Array(n);
      ref.nearestRows(x, n, c, kc, dim, METRIC_L2, expN, expD);
      k.nearestRows(xPtr, n, cPtr, kc, dim, METRIC_L2, nPtr, dPtr);
      assert.deepEqual(arena.u32(nPtr, n), expN, `nearestRows dim=${dim}`);
      close(arena.f32(dPtr, n), expD, true, `nearestRows dist dim=${dim}`);

      // transposed layout, padded to a multiple of 4 centroids with +inf norms
      const kPad = (kc + 3) & ~3;
      const t = new Float32Array(kPad * dim);
      const norms = new Float32Array(kPad).fill(Infinity);
      for (let ci = 0; ci < kc; ci++) {
        let s = 0;
        for (let d = 0; d < dim; d++) {
          t[d * kPad + ci] = c[ci * dim + d];
          s += c[ci * dim + d] ** 2;
        }
        norms[ci] = s;
      }
      const tPtr = arena.allocFrom(t);
      const normsPtr = arena.allocFrom(norms);
      k.nearestRowsT(xPtr, n, dim, dim, tPtr, normsPtr, kPad, nPtr, dPtr);
      assert.deepEqual(arena.u32(nPtr, n), expN, `nearestRowsT dim=${dim}`);
      close(arena.f32(dPtr, n), expD, true, `nearestRowsT dist dim=${dim}`);
      arena.release(mark);
    }
  });
});

test('k-means++ steps (seedUpdate, seedPick) and Lloyd sums (accumulateRows) match the reference', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(12);
    for (const dim of DIMS) {
      const n = 45;
      const rows = randomData(rng, n * dim, true);
      const mark = arena.mark();
      const rowsPtr = arena.allocFrom(rows);
      const minPtr = arena.alloc(n * 8);
      const minDist = new Float64Array(arena.bytes.buffer, minPtr, n).fill(Infinity);
      const expected = new Float64Array(n).fill(Infinity);
      for (const centre of [3, 17, 40]) {
        const total = k.seedUpdate(rowsPtr + centre * dim * 4, rowsPtr, n, dim, minPtr);
        const expTotal = ref.seedUpdate(rows.subarray(centre * dim, centre * dim + dim), rows, n, dim, expected);
        assert.equal(total, expTotal, `seedUpdate total dim=${dim}`);
        assert.deepEqual(Array.from(new Float64Array(arena.bytes.buffer, minPtr, n)), Array.from(expected), `seedUpdate dim=${dim}`);
        for (const f of [0, 0.1, 0.5, 0.99, 1.5]) {
          assert.equal(k.seedPick(minPtr, n, f * total), ref.seedPick(expected, n, f * total), `seedPick dim=${dim} f=${f}`);
        }
      }
      assert.equal(minDist.length, n);

      const kc = 5;
      const stride = dim + 2;
      const x = randomData(rng, n * stride, false);
      const nearest = Uint32Array.from({ length: n }, () => rng.int(kc));
      const xPtr = arena.allocFrom(x);
      const nearestPtr = arena.allocFrom(nearest);
      const sumsPtr = arena.alloc(kc * dim * 8);
      const countsPtr = arena.alloc(kc * 8);
      new Float64Array(arena.bytes.buffer, sumsPtr, kc * dim).fill(0);
      new Float64Array(arena.bytes.buffer, countsPtr, kc).fill(0);
      k.accumulateRows(xPtr, n, stride, dim, nearestPtr, sumsPtr, countsPtr);
      const sums = new Float64Array(kc * dim);
      const counts = new Float64Array(kc);
      ref.accumulateRows(x, n, stride, dim, nearest, sums, counts);
      assert.deepEqual(Array.from(new Float64Array(arena.bytes.buffer, sumsPtr, kc * dim)), Array.from(sums), `accumulateRows sums dim=${dim}`);
      assert.deepEqual(Array.from(new Float64Array(arena.bytes.buffer, countsPtr, kc)), Array.from(counts), `accumulateRows counts dim=${dim}`);
      arena.release(mark);
    }
  });
});

test('pqLut (transposed, SIMD) matches the plain reference table; adcByIds matches', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(3);
    for (const dim of DIMS) for (const m of [1, Math.max(1, dim >> 2), dim]) for (const mode of [LUT_L2, LUT_IP, LUT_RESIDUAL_L2]) {
      const codebooks = randomData(rng, PQ_CENTROIDS * dim, true);
      const q = randomData(rng, dim, true);
      const { codebooksT, norms } = transposeCodebooks(codebooks, dim, m);
      const mark = arena.mark();
      const qPtr = arena.allocFrom(q);
      const tPtr = arena.allocFrom(codebooksT);
      const normsPtr = arena.allocFrom(norms);
      const lutPtr = arena.alloc(m * PQ_CENTROIDS * 4);
      k.pqLut(qPtr, tPtr, normsPtr, dim, m, mode, lutPtr, 0, 0, 0);
      const expected = new Float32Array(m * PQ_CENTROIDS);
      refPq.pqLut(q, codebooks, dim, m, mode, expected);
      close(arena.f32(lutPtr, m * PQ_CENTROIDS), expected, true, `pqLut dim=${dim} m=${m} mode=${mode}`);
      // with the 16-bit codebooks: subspaces of other than 4 dimensions within 0.1 % of the table's range
      const paired = pairCodebooks(codebooks, dim, m);
      if (paired) {
        const pairsPtr = arena.allocFrom(paired.pairs);
        const scratchPtr = arena.alloc(((dim + 1) >> 1) * 4);
        const qLutPtr = arena.alloc(m * PQ_CENTROIDS * 4);
        k.pqLut(qPtr, tPtr, normsPtr, dim, m, mode, qLutPtr, pairsPtr, paired.scale, scratchPtr);
        const got = arena.f32(qLutPtr, m * PQ_CENTROIDS);
        const range = expected.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        for (let i = 0; i < expected.length; i++) {
          assert.ok(Math.abs(got[i] - expected[i]) <= 1e-3 * range, `16-bit pqLut dim=${dim} m=${m} mode=${mode} [${i}]: ${got[i]} vs ${expected[i]}`);
        }
      }

      const n = 40;
      const codes = Uint8Array.from({ length: n * m }, () => rng.int(256));
      const ids = Uint32Array.from({ length: 25 }, () => rng.int(n));
      const codesPtr = arena.allocFrom(codes);
      const idsPtr = arena.allocFrom(ids);
      const outPtr = arena.alloc(ids.length * 4);
      k.adcByIds(lutPtr, codesPtr, m, idsPtr, ids.length, outPtr);
      const exp2 = new Float32Array(ids.length);
      refPq.adcByIds(expected, codes, m, ids, ids.length, exp2);
      close(arena.f32(outPtr, ids.length), exp2, true, `adcByIds dim=${dim} m=${m}`);
      arena.release(mark);
    }
  });
});

test('pqLut on long subspaces: 16-bit pairs up to MAX_PAIRED_LENGTH, float32 past it (issue 15)', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(13);
    // lengths 48 (pairs), 510 and 511 (one each side of the limit), 512 and 1024 (no pairs kept)
    for (const [dim, m] of [[96, 2], [1021, 2], [1024, 2], [1024, 1]]) for (const mode of [LUT_L2, LUT_IP, LUT_RESIDUAL_L2]) {
      const codebooks = randomData(rng, PQ_CENTROIDS * dim, true);
      const q = randomData(rng, dim, true);
      const { codebooksT, norms } = transposeCodebooks(codebooks, dim, m);
      const expected = new Float32Array(m * PQ_CENTROIDS);
      refPq.pqLut(q, codebooks, dim, m, mode, expected);
      const mark = arena.mark();
      const qPtr = arena.allocFrom(q);
      const tPtr = arena.allocFrom(codebooksT);
      const normsPtr = arena.allocFrom(norms);
      const lutPtr = arena.alloc(m * PQ_CENTROIDS * 4);
      k.pqLut(qPtr, tPtr, normsPtr, dim, m, mode, lutPtr, 0, 0, 0);
      close(arena.f32(lutPtr, m * PQ_CENTROIDS), expected, true, `pqLut dim=${dim} m=${m} mode=${mode}`);
      const paired = pairCodebooks(codebooks, dim, m);
      const lengths = Array.from({ length: m }, (_, j) => subspaceOffset(j + 1, dim, m) - subspaceOffset(j, dim, m));
      assert.equal(paired !== null, lengths.some((len) => len <= MAX_PAIRED_LENGTH), `pairs kept for dim=${dim} m=${m}`);
      if (paired) {
        const pairsPtr = arena.allocFrom(paired.pairs);
        k.pqLut(qPtr, tPtr, normsPtr, dim, m, mode, lutPtr, pairsPtr, paired.scale, arena.alloc(((dim + 1) >> 1) * 4));
        const got = arena.f32(lutPtr, m * PQ_CENTROIDS).slice();
        for (let j = 0; j < m; j++) {
          const gotJ = got.subarray(j * PQ_CENTROIDS, (j + 1) * PQ_CENTROIDS);
          const expJ = expected.subarray(j * PQ_CENTROIDS, (j + 1) * PQ_CENTROIDS);
          if (lengths[j] > MAX_PAIRED_LENGTH) {
            close(gotJ, expJ, true, `float32 table past the pair limit dim=${dim} m=${m} j=${j}`);
            continue;
          }
          const range = expJ.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
          for (let c = 0; c < PQ_CENTROIDS; c++) {
            assert.ok(Math.abs(gotJ[c] - expJ[c]) <= 1e-3 * range, `16-bit pqLut dim=${dim} m=${m} j=${j} [${c}]: ${gotJ[c]} vs ${expJ[c]}`);
          }
          // rounding shows: the kernel took the pairs at this length (its limit is the same as ours)
          assert.ok(gotJ.some((v, c) => v !== expJ[c]), `16-bit table used at length ${lengths[j]}`);
        }
      }
      arena.release(mark);
    }
  });
});

/** A random graph in the adjacency layout: row i = [count, nbr...], no self links, no repeats. */
function randomGraph(rng: Rng, n: number, R: number): Uint32Array {
  const adj = new Uint32Array(n * (R + 1));
  for (let i = 0; i < n; i++) {
    const count = 1 + rng.int(R);
    const nbrs = new Set<number>();
    while (nbrs.size < count) {
      const nb = rng.int(n);
      if (nb !== i) nbrs.add(nb);
    }
    adj[i * (R + 1)] = count;
    [...nbrs].forEach((nb, j) => (adj[i * (R + 1) + 1 + j] = nb));
  }
  return adj;
}

test('searchExact, walkExact, searchPq, rerank and selectZones follow the reference step for step', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(4);
    // pools of 24 insert by a walk from the end, pools of 80 by binary search and a block move
    for (const dim of [3, 16, 17]) for (const metric of METRICS) for (const L of [24, 80]) {
      const n = 300;
      const R = 8;
      const vectors = randomData(rng, n * dim, true);
      const q = randomData(rng, dim, true);
      const adj = randomGraph(rng, n, R);
      const entries = [rng.int(n), rng.int(n), rng.int(n)];
      const mark = arena.mark();
      const vPtr = arena.allocFrom(vectors);
      const qPtr = arena.allocFrom(q);
      const adjPtr = arena.allocFrom(adj);
      const entPtr = arena.allocFrom(Uint32Array.from(entries));
      const visitedPtr = arena.alloc(n * 2);
      arena.u16(visitedPtr, n).fill(0);
      const distPtr = arena.alloc(L * 4);
      const idsPtr = arena.alloc(L * 4);
      const nbPtr = arena.alloc(R * 4);

      const got = k.searchExact(qPtr, vPtr, dim, metric, adjPtr, R, entPtr, entries.length, L, visitedPtr, 1, distPtr, idsPtr, 0, n, 0, nbPtr);
      const exp = refSearch.beamSearch((i) => ref.distance(q, 0, vectors, i * dim, dim, metric), adj, R, entries, L, n);
      k.stripExpanded(idsPtr, got);
      assert.deepEqual(Array.from(arena.u32(idsPtr, got)), exp.ids, `searchExact ids dim=${dim} metric=${metric}`);
      assert.deepEqual(Array.from(arena.f32(distPtr, got)), exp.dists, 'searchExact distances');
      // restricted to a node range, as for per-zone graphs
      const [lo, hi] = [60, 240];
      const inside = entries.map((e) => lo + (e % (hi - lo)));
      const inPtr = arena.allocFrom(Uint32Array.from(inside));
      const gotR = k.searchExact(qPtr, vPtr, dim, metric, adjPtr, R, inPtr, inside.length, L, visitedPtr, 3, distPtr, idsPtr, lo, hi, 0, nbPtr);
      const expR0 = refSearch.beamSearch((i) => ref.distance(q, 0, vectors, i * dim, dim, metric), adj, R, inside, L, n, lo, hi);
      k.stripExpanded(idsPtr, gotR);
      assert.deepEqual(Array.from(arena.u32(idsPtr, gotR)), expR0.ids, 'searchExact within a range');

      // PQ traversal with an integer table: exact sums in any order
      const m = 4;
      const lut = Float32Array.from({ length: m * 256 }, () => rng.int(100));
      const codes = Uint8Array.from({ length: n * m }, () => rng.int(256));
      const lutPtr = arena.allocFrom(lut);
      const codesPtr = arena.allocFrom(codes);
      const gotPq = k.searchPq(lutPtr, codesPtr, m, adjPtr, R, entPtr, entries.length, L, visitedPtr, 4, distPtr, idsPtr, 0, 0, 0, 0, 0, 0, dim, metric, 0, 0, 0, 0, nbPtr);
      const expPq = refSearch.beamSearch((i) => refPq.adc(lut, codes, i, m), adj, R, entries, L, n);
      k.stripExpanded(idsPtr, gotPq);
      assert.deepEqual(Array.from(arena.u32(idsPtr, gotPq)), expPq.ids, 'searchPq ids');

      // rerank the PQ pool exactly
      const kk = 5;
      const oIds = arena.alloc(kk * 4);
      const oDist = arena.alloc(kk * 4);
      const r = k.rerank(qPtr, vPtr, dim, metric, 0, idsPtr, gotPq, gotPq, kk, oIds, oDist, 0);
      const expR = refSearch.rerank(q, vectors, dim, metric, expPq.ids, kk);
      assert.deepEqual(Array.from(arena.f32(oDist, r)), expR.dists, 'rerank distances');
      assert.deepEqual(Array.from(arena.u32(oIds, r)), expR.ids, 'rerank ids');
      // only the first 7 candidates the bitmap admits (every third node excluded)
      const admit = (id: number) => id % 3 !== 0;
      const bits = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) if (admit(i)) bits[i >> 3] |= 1 << (i & 7);
      const bitsPtr = arena.allocFrom(bits);
      const rf = k.rerank(qPtr, vPtr, dim, metric, 0, idsPtr, gotPq, 7, kk, oIds, oDist, bitsPtr);
      const expF = refSearch.rerank(q, vectors, dim, metric, expPq.ids, kk, 7, admit);
      assert.deepEqual(Array.from(arena.u32(oIds, rf)), expF.ids, 'rerank through an allow bitmap');
      assert.deepEqual(Array.from(arena.f32(oDist, rf)), expF.dists, 'rerank distances through an allow bitmap');

      // seeded by scanning two "zones" (node ranges) in full before the walk
      const zoneStart = Uint32Array.from([0, 40, 90, 170, 300]);
      const zsPtr = arena.allocFrom(zoneStart);
      const scanPtr = arena.allocFrom(Uint32Array.from([2, 0]));
      const gotScan = k.searchPq(lutPtr, codesPtr, m, adjPtr, R, entPtr, entries.length, L, visitedPtr, 5, distPtr, idsPtr, 0, 0, 0, 0, 0, 0, dim, metric, scanPtr, 2, zsPtr, 0, nbPtr);
      const expScan = refSearch.beamSearch((i) => refPq.adc(lut, codes, i, m), adj, R, entries, L, n, 0, n, [[90, 170], [0, 40]]);
      k.stripExpanded(idsPtr, gotScan);
      assert.deepEqual(Array.from(arena.u32(idsPtr, gotScan)), expScan.ids, 'searchPq seeded by zone scans');
      assert.deepEqual(Array.from(arena.f32(distPtr, gotScan)), expScan.dists, 'searchPq scan distances');
      // scans seed only admitted nodes; the walk still crosses the others
      const gotScanF = k.searchPq(lutPtr, codesPtr, m, adjPtr, R, entPtr, entries.length, L, visitedPtr, 6, distPtr, idsPtr, 0, 0, 0, 0, 0, 0, dim, metric, scanPtr, 2, zsPtr, bitsPtr, nbPtr);
      const expScanF = refSearch.beamSearch((i) => refPq.adc(lut, codes, i, m), adj, R, entries, L, n, 0, n, [[90, 170], [0, 40]], admit);
      k.stripExpanded(idsPtr, gotScanF);
      assert.deepEqual(Array.from(arena.u32(idsPtr, gotScanF)), expScanF.ids, 'searchPq with zone scans through an allow bitmap');

      // zone selection: exact scan and the two-level tree
      const nZones = 20;
      const centroids = randomData(rng, nZones * dim, true);
      const groupCentroids = randomData(rng, 4 * dim, true);
      const groupStart = Uint32Array.from([0, 5, 9, 15, 20]);
      const cPtr = arena.allocFrom(centroids);
      const gcPtr = arena.allocFrom(groupCentroids);
      const gsPtr = arena.allocFrom(groupStart);
      const zPtr = arena.alloc(6 * 4);
      const zdPtr = arena.alloc(6 * 4);
      const scratch = arena.alloc(64);
      const termPtr = arena.alloc(nZones * 4);
      const tagPtr = arena.alloc(nZones * 2);
      arena.u16(tagPtr, nZones).fill(0);
      let epoch = 0;
      for (const [nGroups, groupProbe] of [[0, 0], [4, 2], [4, 4]]) {
        const found = k.selectZones(qPtr, cPtr, nZones, dim, metric, gcPtr, gsPtr, nGroups, groupProbe, 6, zPtr, zdPtr, scratch, 0, 0, 0);
        const expZ = refSearch.selectZones(q, centroids, nZones, dim, metric, groupCentroids, groupStart, nGroups, groupProbe, 6);
        assert.deepEqual(Array.from(arena.u32(zPtr, found)), expZ, `selectZones groups=${nGroups}`);
        // kept zone terms: exactly the zones whose centroid distance was computed, with that distance
        epoch++;
        const keptFound = k.selectZones(qPtr, cPtr, nZones, dim, metric, gcPtr, gsPtr, nGroups, groupProbe, 6, zPtr, zdPtr, scratch, termPtr, tagPtr, epoch);
        assert.deepEqual(Array.from(arena.u32(zPtr, keptFound)), expZ, 'selectZones keeping zone terms');
        const groupOf = (z: number) => groupStart.findIndex((start, g) => z >= start && z < groupStart[g + 1]);
        const groupDist = (g: number) => ref.distance(q, 0, groupCentroids, g * dim, dim, metric);
        const probed = [0, 1, 2, 3].sort((a, b) => groupDist(a) - groupDist(b)).slice(0, groupProbe);
        const tags = arena.u16(tagPtr, nZones);
        const terms = arena.f32(termPtr, nZones);
        for (let z = 0; z < nZones; z++) {
          const computed = nGroups === 0 || probed.includes(groupOf(z));
          assert.equal(tags[z] === epoch, computed, `zone ${z} term kept only when computed (groups=${nGroups})`);
          if (computed) close([terms[z]], [ref.distance(q, 0, centroids, z * dim, dim, metric)], true, `zone ${z} term`);
        }
      }

      // robust prune of the exact pool around the query's nearest node
      const p = exp.ids[0];
      const cand = exp.ids.slice(1);
      const candDist = cand.map((c) => ref.distance(vectors, p * dim, vectors, c * dim, dim, metric));
      const order = cand.map((_, i) => i).sort((a, b) => candDist[a] - candDist[b] || a - b);
      const sIds = order.map((i) => cand[i]);
      const sDist = order.map((i) => candDist[i]);
      const cIdsPtr = arena.allocFrom(Uint32Array.from(sIds));
      const cDistPtr = arena.allocFrom(Float32Array.from(sDist));
      const keptPtr = arena.alloc(R * 4);
      const hPtr = arena.allocFrom(Uint16Array.from(vectors, (v) => refHalf.encodeHalf(v)));
      for (const alpha of [1, 1.2]) {
        const kept = k.robustPrune(vPtr, dim, metric, cIdsPtr, cDistPtr, sIds.length, R, alpha, keptPtr, 0, 0);
        const expK = refSearch.robustPrune(vectors, dim, metric, sIds, sDist, R, alpha);
        assert.deepEqual(Array.from(arena.u32(keptPtr, kept)), expK, `robustPrune alpha=${alpha}`);
        // the same rows stored as binary16 (small integers: exact) prune the same way
        const keptHalf = k.robustPrune(hPtr, dim, metric, cIdsPtr, cDistPtr, sIds.length, R, alpha, keptPtr, 1, arena.alloc(dim * 4));
        assert.deepEqual(Array.from(arena.u32(keptPtr, keptHalf)), expK, `robustPrune on binary16 rows alpha=${alpha}`);
      }
      const gotHalf = k.searchExact(qPtr, hPtr, dim, metric, adjPtr, R, entPtr, entries.length, L, visitedPtr, 7, distPtr, idsPtr, 0, n, 1, nbPtr);
      k.stripExpanded(idsPtr, gotHalf);
      assert.deepEqual(Array.from(arena.u32(idsPtr, gotHalf)), exp.ids, 'searchExact on binary16 rows');

      // the exact walk of queries, seeded by zone scans through the bitmap: float32 rows on their
      // distances, binary16 rows in the dot-product form from a scaled query (small integers: exact)
      const scans: [number, number][] = [[90, 170], [0, 40]];
      const gotWalk = k.walkExact(qPtr, 0, 0, vPtr, dim, metric, 0, adjPtr, R, entPtr, entries.length, L, visitedPtr, 8, distPtr, idsPtr, scanPtr, 2, zsPtr, bitsPtr, nbPtr);
      const expWalk = refSearch.beamSearch((i) => ref.distance(q, 0, vectors, i * dim, dim, metric), adj, R, entries, L, n, 0, n, scans, admit);
      k.stripExpanded(idsPtr, gotWalk);
      assert.deepEqual(Array.from(arena.u32(idsPtr, gotWalk)), expWalk.ids, 'walkExact ids');
      assert.deepEqual(Array.from(arena.f32(distPtr, gotWalk)), expWalk.dists, 'walkExact distances');
      const halfRows = arena.u16(hPtr, n * dim).slice();
      const normsPtr = arena.alloc(n * 4);
      k.halfRowNorms(hPtr, 0, n, dim, normsPtr);
      assert.deepEqual(Array.from(arena.f32(normsPtr, n)), Array.from({ length: n }, (_, i) => refHalf.rowNormHalf(halfRows, i * dim, dim)), 'halfRowNorms');
      const qsPtr = arena.allocFrom(q.map((v) => v * 2 ** 112));
      const gotWalkHalf = k.walkExact(qPtr, qsPtr, metric === METRIC_L2 ? normsPtr : 0, hPtr, dim, metric, 1, adjPtr, R, entPtr, entries.length, L, visitedPtr, 9, distPtr, idsPtr, scanPtr, 2, zsPtr, bitsPtr, nbPtr);
      const expWalkHalf = refSearch.beamSearch((i) => refHalf.walkDistanceHalf(q, halfRows, i * dim, dim, metric), adj, R, entries, L, n, 0, n, scans, admit);
      k.stripExpanded(idsPtr, gotWalkHalf);
      assert.deepEqual(Array.from(arena.u32(idsPtr, gotWalkHalf)), expWalkHalf.ids, 'walkExact ids on binary16 rows');
      assert.deepEqual(Array.from(arena.f32(distPtr, gotWalkHalf)), expWalkHalf.dists, 'walkExact distances on binary16 rows');
      arena.release(mark);
    }
  });
});

test('binary16: encodeHalf rounds like the reference, distanceHalf (in rerank) matches', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(5);
    // known encodings, then random values across the half range, subnormals and ties
    const known: [number, number][] = [[0, 0], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -24, 0x0001], [2 ** -14, 0x0400], [0.1, 0x2e66], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02]];
    const values = known.map(([v]) => v);
    for (let i = 0; i < 2000; i++) values.push((rng.next() * 2 - 1) * 2 ** (rng.int(40) - 24));
    for (let i = 0; i < 200; i++) values.push(rng.int(4096) - 2048 + 0.5);
    const src = Float32Array.from(values);
    const mark = arena.mark();
    const srcPtr = arena.allocFrom(src);
    const dstPtr = arena.alloc(src.length * 2);
    k.encodeHalf(srcPtr, dstPtr, src.length);
    const bits = arena.u16(dstPtr, src.length);
    known.forEach(([, h], i) => assert.equal(bits[i], h, `encode ${known[i][0]}`));
    for (let i = 0; i < src.length; i++) {
      assert.equal(bits[i], refHalf.encodeHalf(src[i]), `encode ${src[i]}`);
      const back = refHalf.decodeHalf(bits[i]);
      assert.ok(Math.abs(back - src[i]) <= Math.max(Math.abs(src[i]) * 2 ** -11, 2 ** -25), `round trip ${src[i]} -> ${back}`);
    }
    arena.release(mark);

    for (const dim of DIMS) for (const metric of METRICS) {
      const n = 30;
      // integers, plus tiny values that are binary16 subnormals, both signs
      const rows = randomData(rng, n * dim, true).map((v, i) => (i % 5 === 0 ? v * 2 ** -20 : v));
      const q = randomData(rng, dim, true);
      const half = Uint16Array.from(rows, (v) => refHalf.encodeHalf(v));
      const m2 = arena.mark();
      const hPtr = arena.allocFrom(half);
      const qPtr = arena.allocFrom(q);
      const ids = Uint32Array.from({ length: n }, (_, i) => i);
      const idsPtr = arena.allocFrom(ids);
      const oIds = arena.alloc(n * 4);
      const oDist = arena.alloc(n * 4);
      const got = k.rerank(qPtr, hPtr, dim, metric, 1, idsPtr, n, n, n, oIds, oDist, 0);
      const expected = Array.from(ids, (i) => refHalf.distanceHalf(q, half, i * dim, dim, metric)).sort((a, b) => a - b);
      assert.equal(got, n);
      close(arena.f32(oDist, n), expected, false, `rerank on binary16 dim=${dim} metric=${metric}`);
      arena.release(m2);
    }
  });
});

test('decodeHalfBlock decodes like the reference; repairNodes rewires around deleted nodes like the reference', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(6);
    for (const count of [1, 7, 8, 9, 100]) {
      const bits = Uint16Array.from({ length: count }, () => rng.int(0x7c00) | (rng.int(2) << 15));
      const mark = arena.mark();
      const src = arena.allocFrom(bits);
      const dst = arena.alloc(count * 4);
      k.decodeHalfBlock(src, dst, count);
      assert.deepEqual(Array.from(arena.f32(dst, count)), Array.from(bits, (h) => Math.fround(refHalf.decodeHalf(h))), `count ${count}`);
      arena.release(mark);
    }

    for (const dim of [3, 16, 17]) for (const metric of METRICS) {
      const n = 200;
      const R = 6;
      const L = 10;
      const vectors = randomData(rng, n * dim, true);
      const adjacency = randomGraph(rng, n, R);
      const deleted = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) if (rng.next() < 0.3) deleted[i >> 3] |= 1 << (i & 7);
      const isDeleted = (i: number) => ((deleted[i >> 3] >> (i & 7)) & 1) === 1;
      const nodes: number[] = [];
      for (let i = 0; i < n; i++) {
        if (isDeleted(i)) continue;
        const row = adjacency.subarray(i * (R + 1) + 1, i * (R + 1) + 1 + adjacency[i * (R + 1)]);
        if (row.some(isDeleted)) nodes.push(i);
      }
      const expected = adjacency.slice();
      refMutate.repairNodes(vectors, dim, metric, expected, R, L, 1.1, isDeleted, nodes);
      const mark = arena.mark();
      const adjPtr = arena.allocFrom(adjacency);
      const visited = arena.alloc(n * 2);
      arena.u16(visited, n).fill(0);
      k.repairNodes(
        arena.allocFrom(vectors), dim, metric, adjPtr, R, L, 1.1, arena.allocFrom(deleted), arena.allocFrom(Uint32Array.from(nodes)),
        nodes.length, n, visited, arena.alloc(L * 8 + dim * 8), 0,
      );
      const got = arena.u32(adjPtr, n * (R + 1));
      assert.deepEqual(Array.from(got), Array.from(expected), `repair dim=${dim} metric=${metric}`);
      for (const p of nodes) {
        const row = got.subarray(p * (R + 1) + 1, p * (R + 1) + 1 + got[p * (R + 1)]);
        assert.ok(!row.some(isDeleted), 'repaired rows link to live nodes only');
      }
      arena.release(mark);
    }
  });
});

test('linkBack with slack, trimLists and narrowRows follow the reference: lists grow to capacity, re-prune to R, end within R', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(8);
    for (const dim of [3, 16, 17]) for (const metric of METRICS) for (const half of [0, 1]) {
      const n = 120;
      const R = 4;
      const capacity = 6;
      const L = 8;
      const alpha = 1.2;
      const stride = capacity + 1;
      const vectors = randomData(rng, n * dim, true);
      // nodes [0, 40) linked among themselves; each later node lists earlier ones and is then back-linked in order
      const adjacency = new Uint32Array(n * stride);
      for (let i = 0; i < n; i++) {
        const pool = i < 40 ? Array.from({ length: 40 }, (_, j) => j).filter((j) => j !== i) : Array.from({ length: i }, (_, j) => j);
        const out = rng.permutation(pool.length).slice(0, rng.int(capacity + 1));
        adjacency[i * stride] = out.length;
        out.forEach((j, e) => (adjacency[i * stride + 1 + e] = pool[j]));
      }
      for (let i = 40; i < n; i++) adjacency[i * stride] = Math.min(adjacency[i * stride], R); // a new node's own list: at most R
      const expected = adjacency.slice();
      for (let node = 40; node < n; node++) refSearch.linkBack(vectors, dim, metric, expected, R, capacity, alpha, node);

      const mark = arena.mark();
      const rowsPtr = half ? arena.allocFrom(Uint16Array.from(vectors, (v) => refHalf.encodeHalf(v))) : arena.allocFrom(vectors);
      const adjPtr = arena.allocFrom(adjacency);
      const scratch = arena.alloc(linkScratchBytes(L, capacity, dim));
      for (let node = 40; node < n; node++) k.linkBack(node, rowsPtr, dim, metric, adjPtr, R, capacity, L, alpha, scratch, 0, 1, half);
      const linked = arena.u32(adjPtr, n * stride);
      const what = `dim=${dim} metric=${metric} half=${half}`;
      assert.deepEqual(Array.from(linked), Array.from(expected), `linkBack ${what}`);
      const counts = Array.from({ length: n }, (_, i) => linked[i * stride]);
      assert.ok(counts.some((c) => c > R), `some list holds more than R while linking (${what})`);
      assert.ok(counts.every((c) => c <= capacity), `no list past capacity (${what})`);

      const ctx = allocBuildContext(arena, {
        ...Object.fromEntries(Object.keys(BCTX).map((f) => [f, 0])) as Record<keyof typeof BCTX, number>,
        vectors: rowsPtr, dim, metric, adjacency: adjPtr, degree: R, capacity, L, alpha, scratch, half, n,
      });
      k.trimLists(ctx, 0, n);
      // in two ascending ranges, as the build moves them piece by piece
      k.narrowRows(adjPtr, 0, 50, capacity, R);
      k.narrowRows(adjPtr, 50, n, capacity, R);
      const trimmed = arena.u32(adjPtr, n * (R + 1));
      const want = refSearch.trimAndNarrow(vectors, dim, metric, expected, n, R, capacity, alpha);
      for (let i = 0; i < n; i++) {
        const row = (a: Uint32Array) => Array.from(a.subarray(i * (R + 1), i * (R + 1) + 1 + a[i * (R + 1)]));
        assert.deepEqual(row(trimmed), row(want), `row ${i} after the trim (${what})`);
        assert.ok(trimmed[i * (R + 1)] <= R, `row ${i} within R`);
      }
      arena.release(mark);
    }
  });
});

test('fastScanTop keeps the rows of the smallest table sums, as the twin sums them', () => {
  withKernels(({ arena, k }) => {
    const rng = new Rng(21);
    for (const [blocks, pairs] of [[1, 1], [3, 25], [400, 128], [2000, 8]]) {
      const codes = Uint8Array.from({ length: blocks * pairs * 16 }, () => rng.int(256));
      // small tables make many equal sums: ties at the cut
      const lut = Uint8Array.from({ length: pairs * 32 }, () => rng.int(pairs > 8 ? 256 : 4));
      const mark = arena.mark();
      const codesPtr = arena.allocFrom(codes);
      const lutPtr = arena.allocFrom(lut);
      const lanesPtr = arena.alloc(32);
      const sums = new Uint16Array(blocks * 16);
      refFastScan.fastScanBlocks(lut, codes, blocks, pairs, sums);
      const n = blocks * 16 - 5; // a short last block
      for (const count of [1, 7, 100, Math.floor(n / 2), n, n + 3]) {
        const capacity = 2 * count + 1;
        const idsPtr = arena.alloc(capacity * 4);
        const sumsPtr = arena.alloc(capacity * 2);
        const got = k.fastScanTop(lutPtr, codesPtr, blocks, pairs, n, count, idsPtr, sumsPtr, capacity, lanesPtr);
        const ids = Array.from(arena.u32(idsPtr, got));
        const kept = Array.from(arena.u16(sumsPtr, got));
        assert.equal(got, Math.min(count, n), `${blocks} x ${pairs}, count ${count}`);
        assert.equal(new Set(ids).size, got, 'distinct rows');
        ids.forEach((id, i) => assert.ok(id < n && kept[i] === sums[id], `row ${id} with its own sum`));
        assert.deepEqual(kept.sort((a, b) => a - b), refFastScan.smallestSums(sums, n, count), `${blocks} x ${pairs}, count ${count}`);
      }
      arena.release(mark);
    }
  });
});
