// PQ at every subspace length (issue 15, item 3): subspaces longer than 32 dimensions used to fail
// the long-row assignment invariant in encodePQ. Each shape is built, searched against brute force,
// grown in place and by a relayout, and round-tripped through bytes; a file whose m gives long
// subspaces loads and grows; pqSubspaces outside [1, dim] fails in the constructor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZGQError, ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { decodeContainer, encodeContainer } from '../src/format.js';
import { createKernels } from '../src/kernels/wasm.js';
import { PQ_CENTROIDS, residuals, residualTerms, trainPQ } from '../src/pq.js';
import { METRIC_L2 } from '../src/kernels/wasm.js';
import { assignInArena } from '../src/kmeans.js';
import { nearestRows } from '../src/kernels/reference/distance.js';
import { Rng } from '../src/random.js';

const ADDED = 20; // first add after a build: a relayout
const IN_PLACE = 3; // second add: into the room the relayout kept
const QUERIES = 8;

interface Shape {
  dim: number;
  pqSubspaces?: number;
  /** m the index should end up with. */
  m: number;
  n: number;
}

const SHAPES: Shape[] = [
  { dim: 1, m: 1, n: 300 },
  { dim: 2, m: 1, n: 300 },
  { dim: 3, m: 1, n: 300 },
  { dim: 33, m: 8, n: 300 }, // lengths 4 and 5
  { dim: 65, m: 16, n: 300 }, // lengths 4 and 5
  { dim: 100, pqSubspaces: 3, m: 3, n: 300 }, // 33, 33, 34: just past the short-row kernel
  { dim: 128, pqSubspaces: 2, m: 2, n: 300 }, // 64
  { dim: 128, pqSubspaces: 1, m: 1, n: 300 }, // one subspace: rows contiguous
  { dim: 768, pqSubspaces: 16, m: 16, n: 200 }, // 48
  { dim: 3072, m: 64, n: 120 }, // the default: 48
  { dim: 65536, m: 64, n: 10 }, // 1024: past the 16-bit tables (MAX_PAIRED_LENGTH)
];

/** Rows [from, to) of x as a copy. */
function rows(x: Float32Array, dim: number, from: number, to: number): Float32Array {
  return x.slice(from * dim, to * dim);
}

/** Own rows found at rank 0 (ids[i] is row i's id) and recall@k of the queries against brute force. */
function check(index: ZGQIndex, held: Float32Array, ids: Uint32Array, queries: Float32Array, dim: number, what: string): void {
  const n = ids.length;
  for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 25))) {
    const r = index.search(held.subarray(i * dim, (i + 1) * dim), 1);
    assert.equal(r.ids[0], ids[i], `${what}: row ${i} is its own nearest`);
  }
  const k = Math.min(10, n);
  const truth = bruteForceKnn(held, n, queries, QUERIES, dim, k, 'l2');
  const truthIds = Uint32Array.from(truth.ids, (i) => ids[i]);
  const found = new Uint32Array(QUERIES * k);
  for (let q = 0; q < QUERIES; q++) found.set(index.search(queries.subarray(q * dim, (q + 1) * dim), k).ids, q * k);
  const recall = recallAtK(found, truthIds, QUERIES, k);
  assert.ok(recall >= 0.9, `${what}: recall@${k} ${recall}`);
}

/** Every query and held row gives the same ids and distances from both indexes. */
function sameResults(a: ZGQIndex, b: ZGQIndex, x: Float32Array, count: number, dim: number, what: string): void {
  for (let i = 0; i < count; i++) {
    const q = x.subarray(i * dim, (i + 1) * dim);
    const ra = a.search(q, 5);
    const rb = b.search(q, 5);
    assert.deepEqual(rb.ids, ra.ids, `${what}: ids of query ${i}`);
    assert.deepEqual(rb.distances, ra.distances, `${what}: distances of query ${i}`);
  }
}

test('assignInArena on a subspace of longer rows (strided) matches the reference on the subspace alone', () => {
  const kernels = createKernels();
  const { arena } = kernels;
  const rng = new Rng(7);
  // 31 and 32: the transposed kernel; longer: gathered, then nearestRows
  for (const [len, stride] of [[31, 40], [32, 96], [33, 100], [48, 3072], [1024, 1030]]) {
    const n = 37;
    const k = 19;
    const x = Float32Array.from({ length: n * stride }, () => rng.int(21) - 10);
    const centroids = Float32Array.from({ length: k * len }, () => rng.int(21) - 10);
    const offset = stride - len; // the last subspace: its rows end where the next row starts
    const sub = new Float32Array(n * len);
    for (let i = 0; i < n; i++) sub.set(x.subarray(i * stride + offset, i * stride + offset + len), i * len);
    const expNearest = new Uint32Array(n);
    const expDist = new Float32Array(n);
    nearestRows(sub, n, centroids, k, len, METRIC_L2, expNearest, expDist);
    const mark = arena.mark();
    const xPtr = arena.allocFrom(x);
    const nearestPtr = arena.alloc(n * 4);
    const distPtr = arena.alloc(n * 4);
    assignInArena(kernels, xPtr + offset * 4, n, len, stride, centroids, k, nearestPtr, distPtr);
    assert.deepEqual(arena.u32(nearestPtr, n), expNearest, `nearest, length ${len} stride ${stride}`);
    assert.deepEqual(arena.f32(distPtr, n), expDist, `distances, length ${len} stride ${stride}`);
    assert.deepEqual(arena.f32(xPtr, n * stride), x, 'the rows are left as they were');
    arena.release(mark);
  }
});

for (const shape of SHAPES) {
  const { dim, pqSubspaces, m, n } = shape;
  test(`dim ${dim}, pqSubspaces ${pqSubspaces ?? 'default'}: build, search, add in place and by relayout, bytes round trip`, async () => {
    const ds = clusteredGaussian({ n: n + ADDED + IN_PLACE, nQueries: QUERIES, dim, seed: dim });
    // binary16 rounding can merge neighbours of 1 to 3 dimensions; their rows stay float32
    const index = new ZGQIndex({ dim, pqSubspaces, storage: dim < 8 ? 'float32' : 'float16' });
    const started = performance.now();
    await index.build(rows(ds.base, dim, 0, n));
    const buildMs = performance.now() - started;
    assert.equal(index.stats().pqSubspaces, m);
    const ids = Uint32Array.from({ length: n + ADDED + IN_PLACE }, (_, i) => i);
    check(index, rows(ds.base, dim, 0, n), ids.subarray(0, n), ds.queries, dim, 'built');

    await index.add(rows(ds.base, dim, n, n + ADDED), ids.subarray(n, n + ADDED));
    assert.equal(index.stats().appended, 0, 'the first add lays the index out afresh');
    await index.add(rows(ds.base, dim, n + ADDED, n + ADDED + IN_PLACE), ids.subarray(n + ADDED));
    assert.equal(index.stats().appended, IN_PLACE, 'the second add goes in place');
    assert.equal(index.size, n + ADDED + IN_PLACE);
    check(index, ds.base, ids, ds.queries, dim, 'after add');

    const copy = ZGQIndex.fromBytes(index.toBytes());
    assert.equal(copy.stats().pqSubspaces, m);
    sameResults(index, copy, ds.queries, QUERIES, dim, 'fromBytes');
    sameResults(index, copy, ds.base, n + ADDED + IN_PLACE, dim, 'fromBytes, own rows');
    // a sane build: linear in dim (the 65,536-d one has 10 rows)
    assert.ok(buildMs < 10000, `build took ${buildMs.toFixed(0)} ms`);
  });
}

test('every pqSubspaces of dims 1 to 9 builds, searches and round-trips', async () => {
  const ds = clusteredGaussian({ n: 9 * 60, nQueries: 0, dim: 1, seed: 5 });
  for (let dim = 1; dim <= 9; dim++) {
    const x = ds.base.subarray(0, 60 * dim);
    for (let m = 1; m <= dim; m++) {
      const index = new ZGQIndex({ dim, pqSubspaces: m, storage: 'float32' });
      await index.build(x);
      assert.equal(index.stats().pqSubspaces, m);
      const r = index.search(x.subarray(7 * dim, 8 * dim), 1);
      assert.equal(r.ids[0], 7, `dim ${dim} m ${m}: own row first`);
      sameResults(index, ZGQIndex.fromBytes(index.toBytes()), x, 60, dim, `dim ${dim} m ${m}`);
    }
  }
});

test('a file whose m gives 64-dimension subspaces loads, searches and grows', async () => {
  const dim = 128;
  const n = 300;
  const m = 2;
  const ds = clusteredGaussian({ n: n + ADDED + IN_PLACE, nQueries: QUERIES, dim, seed: 9 });
  // written with 4-dimension subspaces; the PQ sections are then re-made with m = 2
  const source = new ZGQIndex({ dim, pqSubspaces: 32, storage: 'float32' });
  await source.build(rows(ds.base, dim, 0, n));
  const decoded = decodeContainer(source.toBytes());
  const f32 = (tag: string) => {
    const b = decoded.sections.get(tag)!;
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  const u32 = (tag: string) => {
    const b = decoded.sections.get(tag)!;
    return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  const vectors = f32('VECS');
  const centroids = f32('CENT');
  const zoneStart = u32('ZSTA');
  const zoneOf = new Uint32Array(n);
  for (let z = 0; z + 1 < zoneStart.length; z++) zoneOf.fill(z, zoneStart[z], zoneStart[z + 1]);
  const kernels = createKernels();
  const input = residuals(vectors, zoneOf, centroids, dim);
  const codebooks = trainPQ(kernels, input, n, dim, m, { seed: 1 });
  // codes from the plain reference, so the file does not depend on the encoder under test
  const codes = new Uint8Array(n * m);
  const len = dim / m;
  const sub = new Float32Array(n * len);
  const nearest = new Uint32Array(n);
  for (let j = 0; j < m; j++) {
    for (let i = 0; i < n; i++) sub.set(input.subarray(i * dim + j * len, i * dim + (j + 1) * len), i * len);
    const block = codebooks.subarray(PQ_CENTROIDS * j * len, PQ_CENTROIDS * (j + 1) * len);
    nearestRows(sub, n, block, PQ_CENTROIDS, len, METRIC_L2, nearest, new Float32Array(n));
    for (let i = 0; i < n; i++) codes[i * m + j] = nearest[i];
  }
  const terms = residualTerms(codebooks, codes, zoneOf, centroids, n, dim, m, METRIC_L2);
  const replaced = new Map<string, Uint8Array>([
    ['CODE', codes],
    ['PQCB', new Uint8Array(codebooks.buffer)],
    ['VTRM', new Uint8Array(terms.buffer)],
  ]);
  const sections = [...decoded.sections].map(([tag, bytes]) => ({ tag, bytes: replaced.get(tag) ?? bytes }));
  const index = ZGQIndex.fromBytes(encodeContainer({ ...decoded.meta, m }, sections));
  assert.equal(index.stats().pqSubspaces, m);

  const ids = Uint32Array.from({ length: n + ADDED + IN_PLACE }, (_, i) => i);
  check(index, rows(ds.base, dim, 0, n), ids.subarray(0, n), ds.queries, dim, 'loaded');
  await index.add(rows(ds.base, dim, n, n + ADDED), ids.subarray(n, n + ADDED));
  await index.add(rows(ds.base, dim, n + ADDED, n + ADDED + IN_PLACE), ids.subarray(n + ADDED));
  assert.equal(index.stats().appended, IN_PLACE);
  check(index, ds.base, ids, ds.queries, dim, 'loaded, then added to');
  sameResults(index, ZGQIndex.fromBytes(index.toBytes()), ds.queries, QUERIES, dim, 'fromBytes');
});

test('pqSubspaces outside [1, dim] or not an integer fails in the constructor', () => {
  const bad: [number, unknown][] = [[8, 0], [8, -1], [8, 9], [8, 2.5], [8, NaN], [8, Infinity], [8, '4'], [1, 2], [65536, 65537]];
  for (const [dim, pqSubspaces] of bad) {
    assert.throws(
      () => new ZGQIndex({ dim, pqSubspaces: pqSubspaces as number }),
      (e: unknown) => {
        assert.ok(e instanceof ZGQError, `dim ${dim}, pqSubspaces ${String(pqSubspaces)}: a ZGQError`);
        assert.equal(e.code, 'INVALID_ARGUMENT');
        // names the argument, the rule and the value given
        assert.match(e.message, new RegExp(`pqSubspaces must be an integer in \\[1, dim = ${dim}\\].*got ${String(pqSubspaces)}$`));
        return true;
      },
    );
  }
  for (const [dim, pqSubspaces] of [[1, 1], [3, 3], [100, 7], [65536, 65536]]) {
    assert.equal(new ZGQIndex({ dim, pqSubspaces }).dim, dim, `dim ${dim}, pqSubspaces ${pqSubspaces} is valid`);
  }
});
