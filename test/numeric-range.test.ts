// Numeric range (issue 15, items 7 and 8): binary16 storage keeps its documented error, a stored
// vector within 2^-11 of its length, at every magnitude; values whose squared distances would
// overflow float32 are refused at build, add, search, searchBatch and load; NaN never comes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_ID, ZGQError, ZGQIndex, type SearchResult } from '../src/index.js';
import { fitsHalf, valueLimit } from '../src/persist.js';
import { decodeContainer, encodeContainer } from '../src/format.js';
import { recallAtK } from '../src/data/groundtruth.js';
import { Rng } from '../src/random.js';

const dim = 16;
const n = 1000;
const LIMIT = valueLimit(dim);
/** binary16's documented error, squared: |x' - x|² <= 2^-22 |x|². */
const HALF_ERROR_SQUARED = 2 ** -22;

type Metric = 'l2' | 'ip' | 'cosine';

/** n uniform rows in (-M, M)^dim. */
function uniform(rows: number, magnitude: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(rows * dim);
  for (let i = 0; i < x.length; i++) x[i] = (rng.next() * 2 - 1) * magnitude;
  return x;
}

/**
 * Exact k nearest in float64, ranked by the metric itself (the shared brute force reports 1 - dot,
 * which is 1 for every row once dot < 2^-53: it cannot rank small ip data).
 */
function exactKnn(base: Float32Array, queries: Float32Array, k: number, metric: Metric): Uint32Array {
  const nb = base.length / dim;
  const nq = queries.length / dim;
  const out = new Uint32Array(nq * k);
  const d = new Float64Array(nb);
  const order = new Uint32Array(nb);
  for (let q = 0; q < nq; q++) {
    let qq = 0;
    for (let j = 0; j < dim; j++) qq += queries[q * dim + j] ** 2;
    for (let i = 0; i < nb; i++) {
      let l2 = 0;
      let dot = 0;
      let xx = 0;
      for (let j = 0; j < dim; j++) {
        const a = queries[q * dim + j];
        const b = base[i * dim + j];
        l2 += (a - b) * (a - b);
        dot += a * b;
        xx += b * b;
      }
      d[i] = metric === 'l2' ? l2 : metric === 'ip' ? -dot : -dot / Math.sqrt(qq * xx);
      order[i] = i;
    }
    order.sort((a, b) => d[a] - d[b]);
    out.set(order.subarray(0, k), q * k);
  }
  return out;
}

function squaredNorm(x: Float32Array, row: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += x[row * dim + j] ** 2;
  return s;
}

function wellFormed(r: SearchResult, k: number, what: string): void {
  for (let i = 0; i < k; i++) {
    assert.notEqual(r.ids[i], NO_ID, `${what}: slot ${i} is empty`);
    assert.ok(Number.isFinite(r.distances[i]), `${what}: distance ${r.distances[i]} in slot ${i}`);
  }
}

const refused = (code: string, pattern: RegExp) => (e: unknown): boolean => e instanceof ZGQError && e.code === code && pattern.test(e.message);

// 1e-30 ... 1e30; above the limit (1.15e18 at dim 16) builds are refused
const MAGNITUDES = [1e-30, 1e-20, 1e-15, 1e-10, 1e-8, 1e-7, 1e-5, 1e-2, 1, 1e3, 1e5, 1e10, 1e15, 1e18, 1e20, 1e30];

for (const metric of ['l2', 'ip', 'cosine'] as const) {
  test(`${metric}: the binary16 error holds, or float32 is kept, at magnitudes 1e-30 to 1e30`, async () => {
    const rows: string[] = [];
    for (const M of MAGNITUDES) {
      const base = uniform(n, M, 7);
      const index = new ZGQIndex({ dim, metric, seed: 3 });
      if (M > LIMIT) {
        await assert.rejects(index.build(base), refused('NOT_FINITE', /vector \d+ has value .* within ±/));
        rows.push(`${M}: refused`);
        continue;
      }
      await index.build(base);
      // own vectors (the first 25) and fresh ones
      const queries = new Float32Array(50 * dim);
      queries.set(base.subarray(0, 25 * dim));
      queries.set(uniform(25, M, 8), 25 * dim);
      const storage = index.stats().storage;
      for (const traversal of ['pq', 'exact'] as const) {
        const results: SearchResult[] = [];
        for (let q = 0; q < 50; q++) results.push(index.search(queries.subarray(q * dim, (q + 1) * dim), 10, { traversal }));
        results.forEach((r, q) => wellFormed(r, 10, `${metric} ${M} ${traversal} query ${q}`));
        const ids = new Uint32Array(500);
        results.forEach((r, q) => ids.set(r.ids, q * 10));
        const recall = recallAtK(ids, exactKnn(base, queries, 10, metric), 50, 10, 10);
        rows.push(`${M} ${storage} ${traversal}: ${recall.toFixed(3)}`);
        // below ~1e-19 squared l2 distances and dot products leave float32's normal range: rows
        // then tie (0, or 1 - 0), which is all float32 can say about them
        if (metric !== 'cosine' && M < 1e-19) continue;
        assert.ok(recall >= 0.95, `${metric} at ${M} (${storage}, ${traversal}): recall@10 ${recall}`);
        if (metric === 'ip') continue;
        for (let q = 0; q < 25; q++) {
          // distance to itself within the stated error: |x' - x|² <= 2^-22 |x|² (cosine: unit x, reported / 2)
          const bound = metric === 'l2' ? HALF_ERROR_SQUARED * squaredNorm(base, q) : HALF_ERROR_SQUARED / 2;
          assert.equal(results[q].ids[0], q, `${metric} ${M}: vector ${q} finds itself first`);
          assert.ok(results[q].distances[0] <= bound * 1.001, `${metric} ${M}: distance to itself ${results[q].distances[0]} > ${bound}`);
        }
      }
      if (metric === 'cosine' || (M >= 1e-2 && M <= 1e3)) assert.equal(storage, 'float16', `binary16 holds ${metric} data at ${M}`);
      else assert.equal(storage, 'float32', `binary16 cannot hold ${metric} data at ${M} to 2^-11`);
    }
    console.log(`# ${metric} recall@10 by magnitude: ${rows.join('; ')}`);
  });
}

test('re-ranked l2 distances lie within 2^-11 |x| of the exact ones under binary16', async () => {
  const base = uniform(n, 3, 9);
  const index = new ZGQIndex({ dim, seed: 3 });
  await index.build(base);
  assert.equal(index.stats().storage, 'float16');
  const queries = uniform(20, 3, 10);
  for (let q = 0; q < 20; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const r = index.search(query, 10);
    for (let i = 0; i < 10; i++) {
      const id = r.ids[i];
      let d = 0;
      for (let j = 0; j < dim; j++) d += (query[j] - base[id * dim + j]) ** 2;
      // |(|q - x'|) - (|q - x|)| <= |x' - x| <= 2^-11 |x|, plus float32 arithmetic
      const gap = Math.abs(Math.sqrt(r.distances[i]) - Math.sqrt(d));
      assert.ok(gap <= 2 ** -11 * Math.sqrt(squaredNorm(base, id)) + 1e-6 * Math.sqrt(d), `query ${q} slot ${i}: off by ${gap}`);
    }
  }
});

test('fitsHalf: rows within 2^-11 of their length, whatever their magnitude', () => {
  assert.ok(fitsHalf(new Float32Array([0, 0, 0, 0]), 4), 'zero rows are exact');
  assert.ok(fitsHalf(new Float32Array([1, -2, 3, 65504]), 4));
  assert.ok(!fitsHalf(new Float32Array([1, -2, 3, 65505]), 4), 'beyond ±65504');
  assert.ok(!fitsHalf(new Float32Array([1e-7, 2e-7, -3e-7, 4e-7]), 4), 'half subnormals keep 1 to 3 bits of 1e-7');
  assert.ok(!fitsHalf(new Float32Array([1e-8, 0, 0, 0]), 4), '1e-8 rounds to 0');
  // a value binary16 cannot hold inside a row it holds well: its error is small beside the row's length
  assert.ok(fitsHalf(new Float32Array([0.5, -0.25, 1e-9, 0.75]), 4));
  // rows are judged one by one: one tiny row decides, wherever it is
  const rows = uniform(64, 1, 3);
  assert.ok(fitsHalf(rows, dim));
  rows.fill(1e-6, 40 * dim, 41 * dim);
  assert.ok(!fitsHalf(rows, dim));
  assert.ok(fitsHalf(new Float32Array([2 ** -14, 2 ** -14 * 1.0009765625, 65504]), 1), 'normal halves are exact');
});

test('values whose squared distances overflow float32 are refused everywhere, with the limit named', async () => {
  assert.ok(LIMIT > 1e18 && LIMIT < 1.2e18, `limit at dim 16: ${LIMIT}`);
  const atLimit = async (metric: Metric): Promise<void> => {
    // every value at ±0.999 limit or half that: the largest distances there are, and all finite
    const rng = new Rng(4);
    const base = new Float32Array(600 * dim);
    for (let i = 0; i < base.length; i++) base[i] = (rng.next() < 0.5 ? -1 : 1) * (rng.next() < 0.5 ? 0.5 : 1) * LIMIT * 0.999;
    for (const residual of [true, false]) {
      const index = new ZGQIndex({ dim, metric, residual, seed: 3 });
      await index.build(base);
      for (const traversal of ['pq', 'exact'] as const) {
        const batch = await index.searchBatch(base.subarray(0, 20 * dim), 10, { traversal });
        for (let i = 0; i < batch.ids.length; i++) {
          assert.notEqual(batch.ids[i], NO_ID, `${metric} residual ${residual} ${traversal}: empty slot ${i}`);
          assert.ok(Number.isFinite(batch.distances[i]), `${metric} residual ${residual} ${traversal}: distance ${batch.distances[i]}`);
        }
      }
      // and such an index saves and loads
      const back = ZGQIndex.fromBytes(index.toBytes());
      wellFormed(back.search(base.subarray(0, dim), 10), 10, `${metric} loaded`);
    }
  };
  await atLimit('l2');
  await atLimit('ip');

  for (const metric of ['l2', 'ip', 'cosine'] as const) {
    const index = new ZGQIndex({ dim, metric, seed: 3 });
    const big = uniform(200, 1, 5);
    big[37 * dim + 5] = 1e19;
    await assert.rejects(index.build(big), refused('NOT_FINITE', /^vector 37 has value 1\.000000e\+19 at position 5; values must lie within ±1\.153e\+18 at dim 16/));
    await index.build(uniform(200, 1, 5));
    await assert.rejects(index.add(big.slice(37 * dim, 38 * dim), [999]), refused('NOT_FINITE', /^vector 0 has value .* within ±/));
    assert.equal(index.size, 200);
    assert.ok(!index.has(999));

    const query = Array.from(uniform(1, 1, 6));
    for (const [value, kind] of [[1e39, 'number[]'], [1e19, 'number[]'], [-2e18, 'number[]']] as const) {
      const q = query.slice();
      q[3] = value;
      assert.throws(() => index.search(q, 5), refused('NOT_FINITE', /^query has value .* at position 3; values must lie within ±/), `${kind} ${value}`);
      assert.throws(() => index.search(Float64Array.from(q), 5), refused('NOT_FINITE', /at position 3/), `Float64Array ${value}`);
      if (Math.abs(value) < 3e38) {
        assert.throws(() => index.search(Float32Array.from(q), 5), refused('NOT_FINITE', /at position 3/), `Float32Array ${value}`);
        const batch = new Float32Array(3 * dim);
        batch.set(Float32Array.from(q), 2 * dim);
        await assert.rejects(index.searchBatch(batch, 5), refused('NOT_FINITE', /^query 2 has value .* at position 3/), `batch ${value}`);
      }
    }
    // at the limit is fine
    const q = query.slice();
    q[3] = -LIMIT;
    wellFormed(index.search(q, 5), 5, `${metric} query at the limit`);
  }
});

test('cosine: a query that is zero in float32 is refused; float32 subnormal rows keep their direction', async () => {
  const index = new ZGQIndex({ dim, metric: 'cosine', seed: 3 });
  // rows of float32 subnormals (1e-40): normalised in float64, so nothing is lost before the index
  const tiny = uniform(300, 1e-40, 11);
  const unit = uniform(300, 1, 12);
  const base = new Float32Array(600 * dim);
  base.set(tiny);
  base.set(unit, tiny.length);
  await index.build(base);
  for (let q = 0; q < 10; q++) {
    const r = index.search(tiny.subarray(q * dim, (q + 1) * dim), 3);
    assert.equal(r.ids[0], q, `subnormal row ${q} finds itself`);
    assert.ok(r.distances[0] <= HALF_ERROR_SQUARED, `distance ${r.distances[0]}`);
  }
  // 1e-50 is 0 in float32, the form queries are searched in: no direction is left
  const gone = new Array<number>(dim).fill(1e-50);
  assert.throws(() => index.search(gone, 3), refused('INVALID_ARGUMENT', /^query has zero length/));
  assert.throws(() => index.search(Float64Array.from(gone), 3), refused('INVALID_ARGUMENT', /zero length/));
  await assert.rejects(index.searchBatch(new Float32Array(dim), 3), refused('INVALID_ARGUMENT', /^query 0 has zero length/));
});

test('a file whose float32 rows overflow the distances is refused (ip gave NaN)', async () => {
  const index = new ZGQIndex({ dim, metric: 'ip', storage: 'float32', seed: 3 });
  await index.build(uniform(300, 1, 13));
  const decoded = decodeContainer(index.toBytes(), 'bytes');
  const sections = [...decoded.sections].map(([tag, bytes]) => ({ tag, bytes: bytes.slice() }));
  const vecs = sections.find((s) => s.tag === 'VECS')!;
  new Float32Array(vecs.bytes.buffer, vecs.bytes.byteOffset, vecs.bytes.byteLength / 4).fill(3e38, 40 * dim, 41 * dim);
  const crafted = encodeContainer(decoded.meta, sections);
  assert.throws(() => ZGQIndex.fromBytes(crafted), refused('CORRUPT_FILE', /section VECS: value 3\.000000e\+38 at element 640 lies beyond ±1\.153e\+18/));
});

test('adds keep the storage rule: rows binary16 cannot hold turn the index to float32, in place or not', async () => {
  for (const count of [3, 300]) {
    const index = new ZGQIndex({ dim, seed: 3 });
    await index.build(uniform(600, 1, 14));
    await index.add(uniform(2, 1, 15), [5000, 5001]);
    assert.equal(index.stats().storage, 'float16', 'rows binary16 holds keep it');
    const tiny = uniform(count, 1e-7, 16);
    const ids = Array.from({ length: count }, (_, i) => 10000 + i);
    await index.add(tiny, ids);
    assert.equal(index.stats().storage, 'float32', `${count} rows at 1e-7`);
    for (let i = 0; i < Math.min(count, 10); i++) {
      const r = index.search(tiny.subarray(i * dim, (i + 1) * dim), 5);
      assert.equal(r.ids[0], ids[i], `added row ${i} finds itself`);
      assert.equal(r.distances[0], 0);
    }
  }
});
