/**
 * `zgq bench` harness: dataset loading and its errors, tie-aware recall, the ground-truth cache,
 * Pareto/target logic, and the JSON schema of a tiny real run. No test looks at a timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import h5wasm from 'h5wasm/node';

import { ZGQError } from '../src/errors.js';
import { ZGQIndex } from '../src/index.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { encodeFvecs, encodeIvecs } from '../src/data/vecs.js';
import { checkDatasetFiles, datasetSpec, fileSpec, holdOut, loadDataset, type IdxSpec, type SyntheticSpec, type TexmexSpec } from '../src/bench/datasets.js';
import { recallByKind, tieAwareRecall, latencyStats, median } from '../src/bench/metrics.js';
import { bestAtTarget, paretoFrontier, paretoLayers, targetSummary, type SummaryPoint } from '../src/bench/pareto.js';
import { cachedGroundTruth, datasetKey, truthCachePaths } from '../src/bench/truth.js';
import { fastestAtTargets, secondPilotPass, runBench } from '../src/bench/runner.js';
import { validateReport } from '../src/bench/schema.js';
import { benchPaths, isInstalled } from '../src/bench/paths.js';
import { writeReport } from '../src/bench/report/write.js';
import { summaryMarkdown, datasetTable, speedupOverOneThread } from '../src/bench/report/tables.js';
import type { ResultRecord } from '../src/bench/types.js';
import { sweepExhausted, WIDE_SCAN_RATIO, zgqCandidates, type SweepPlan } from '../src/bench/sweeps.js';
import { loadPackage } from '../src/bench/peers/load.js';
import { pqSubquantizers } from '../src/bench/peers/faiss.js';
import { searchOptions } from '../src/bench/peers/zgq.js';
import { registerBench } from '../src/cli/bench.js';

const SHARED_DATA = fileURLToPath(new URL('../../shared/data/', import.meta.url));

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'zgq-bench-test-'));
}

async function expectZgq(fn: () => unknown, code: string, pattern?: RegExp): Promise<ZGQError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ZGQError, `expected a ZGQError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(!err.message.includes('\n'), 'error messages are one line');
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected ZGQError ${code}`);
}

/** A small texmex dataset on disk: base, queries, exact ground truth of depth 20. */
async function texmexFixture(dir: string, opts: { corruptTruth?: boolean } = {}): Promise<TexmexSpec> {
  const d = clusteredGaussian({ n: 500, nQueries: 12, dim: 8, seed: 5 });
  const gt = bruteForceKnn(d.base, 500, d.queries, 12, 8, 20);
  if (opts.corruptTruth) {
    // swap every query's nearest neighbour for its 20th: the spot check must notice
    for (let q = 0; q < 12; q++) gt.ids[q * 20] = gt.ids[q * 20 + 19];
  }
  await mkdir(join(dir, 'tiny'), { recursive: true });
  await writeFile(join(dir, 'tiny/base.fvecs'), encodeFvecs(d.base, 8));
  await writeFile(join(dir, 'tiny/query.fvecs'), encodeFvecs(d.queries, 8));
  await writeFile(join(dir, 'tiny/gt.ivecs'), encodeIvecs(gt.ids, 20));
  return { kind: 'texmex', name: 'tiny', description: 'tiny texmex', base: 'tiny/base.fvecs', queries: 'tiny/query.fvecs', groundTruth: 'tiny/gt.ivecs' };
}

test('datasets: texmex files load with their ground truth, spot-checked', async () => {
  const dir = await tempDir();
  try {
    const spec = await texmexFixture(dir);
    const ds = await loadDataset({ ...spec, maxQueries: 10 }, { dataDir: dir, cacheDir: join(dir, 'cache'), k: 10 });
    assert.equal(ds.nBase, 500);
    assert.equal(ds.nQueries, 10);
    assert.equal(ds.dim, 8);
    assert.equal(ds.queries.length, 80);
    assert.equal(ds.truth.source, 'file');
    assert.equal(ds.truth.depth, 20);
    assert.equal(ds.truth.spotChecked, 5);
    assert.equal(ds.queryKind, null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('datasets: missing, malformed and inconsistent files fail with one-line ZGQErrors', async () => {
  const dir = await tempDir();
  try {
    const spec = await texmexFixture(dir);
    const opts = { dataDir: dir, cacheDir: join(dir, 'cache'), k: 10 };
    await expectZgq(() => checkDatasetFiles({ ...spec, base: 'tiny/nope.fvecs' }, dir), 'IO', /nope\.fvecs' does not exist/);
    await expectZgq(() => loadDataset({ ...spec, base: 'tiny/nope.fvecs' }, opts), 'IO');
    // a truncated record
    const bytes = await readFile(join(dir, 'tiny/base.fvecs'));
    await writeFile(join(dir, 'tiny/bad.fvecs'), bytes.subarray(0, bytes.length - 3));
    await expectZgq(() => loadDataset({ ...spec, base: 'tiny/bad.fvecs' }, opts), 'CORRUPT_FILE', /truncated/);
    // queries of another dimension
    await writeFile(join(dir, 'tiny/q4.fvecs'), encodeFvecs(new Float32Array(12 * 4), 4));
    await expectZgq(() => loadDataset({ ...spec, queries: 'tiny/q4.fvecs' }, opts), 'CORRUPT_FILE', /dim/);
    // k deeper than the shipped truth
    await expectZgq(() => loadDataset(spec, { ...opts, k: 21 }), 'INVALID_ARGUMENT', /depth 20/);
    // a wrong ground truth is caught by the spot check
    const wrongDir = await tempDir();
    try {
      const wrong = await texmexFixture(wrongDir, { corruptTruth: true });
      await expectZgq(() => loadDataset(wrong, { ...opts, dataDir: wrongDir }), 'CORRUPT_FILE', /disagrees with brute force/);
    } finally {
      await rm(wrongDir, { recursive: true, force: true });
    }
    await expectZgq(() => datasetSpec('nope'), 'INVALID_ARGUMENT', /unknown dataset 'nope'/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('datasets: gzip IDX images (the Fashion-MNIST format) load as float32', async () => {
  const dir = await tempDir();
  try {
    const rows = 3;
    const cols = 3;
    const images = (n: number, seed: number) => {
      const buf = Buffer.alloc(16 + n * rows * cols);
      buf.writeInt32BE(2051, 0);
      buf.writeInt32BE(n, 4);
      buf.writeInt32BE(rows, 8);
      buf.writeInt32BE(cols, 12);
      for (let i = 16; i < buf.length; i++) buf[i] = (i * seed) % 251;
      return gzipSync(buf);
    };
    await writeFile(join(dir, 'train.gz'), images(200, 7));
    await writeFile(join(dir, 'test.gz'), images(6, 13));
    const base = new Float32Array(200 * 9);
    const q = new Float32Array(6 * 9);
    for (let i = 0; i < base.length; i++) base[i] = ((16 + i) * 7) % 251;
    for (let i = 0; i < q.length; i++) q[i] = ((16 + i) * 13) % 251;
    const gt = bruteForceKnn(base, 200, q, 6, 9, 10);
    await writeFile(join(dir, 'gt.ivecs'), encodeIvecs(gt.ids, 10));
    const spec: IdxSpec = { kind: 'idx', name: 'idx', description: 'idx', base: 'train.gz', queries: 'test.gz', groundTruth: 'gt.ivecs' };
    const ds = await loadDataset(spec, { dataDir: dir, cacheDir: join(dir, 'cache'), k: 10 });
    assert.equal(ds.dim, 9);
    assert.equal(ds.nBase, 200);
    assert.deepEqual(Array.from(ds.base.subarray(0, 9)), Array.from(base.subarray(0, 9)));
    // not gzip, not IDX
    await writeFile(join(dir, 'junk.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    await expectZgq(() => loadDataset({ ...spec, base: 'junk.gz' }, { dataDir: dir, cacheDir: join(dir, 'cache'), k: 10 }), 'CORRUPT_FILE', /gzip/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('datasets: the shared siftsmall files load through the harness', { skip: !existsSync(join(SHARED_DATA, 'siftsmall')) && 'shared data not present' }, async () => {
  const ds = await loadDataset(datasetSpec('siftsmall'), { dataDir: SHARED_DATA, cacheDir: join(tmpdir(), 'unused'), k: 10 });
  assert.equal(ds.nBase, 10_000);
  assert.equal(ds.nQueries, 100);
  assert.equal(ds.dim, 128);
  assert.equal(ds.truth.depth, 100);
  assert.equal(ds.truth.spotChecked, 5);
});

test('recall: tie-aware recall counts equal-distance neighbours, never duplicates or bad ids', () => {
  // 1-d base: 0, 1, 2, 2, 5 ; query at 0 -> true top-3 {0, 1, 2|3} (ids 2 and 3 tie)
  const base = new Float32Array([0, 1, 2, 2, 5]);
  const queries = new Float32Array([0]);
  const truth = new Uint32Array([0, 1, 2, 3, 4]);
  const r = (found: number[]) => tieAwareRecall(new Uint32Array(found), 3, truth, 5, base, 5, queries, 1, 1, 3).recall;
  assert.equal(r([0, 1, 2]), 1);
  assert.equal(r([0, 1, 3]), 1, 'the tied neighbour counts');
  assert.equal(r([0, 1, 4]), 2 / 3);
  assert.equal(r([0, 0, 0]), 1 / 3, 'duplicates count once');
  assert.equal(r([0, 1, 0xffffffff]), 2 / 3, 'empty slots never count');
  assert.equal(r([0, 1, 99]), 2 / 3, 'ids outside the base never count');

  // on tie-free data it equals the set-overlap recall of the core
  const d = clusteredGaussian({ n: 300, nQueries: 20, dim: 6, seed: 9, outlierFraction: 0.3 });
  const gt = bruteForceKnn(d.base, 300, d.queries, 20, 6, 10);
  const found = new Uint32Array(gt.ids);
  for (let q = 0; q < 20; q += 3) found[q * 10 + 9] = (found[q * 10 + 9] + 150) % 300; // spoil some answers
  const ours = tieAwareRecall(found, 10, gt.ids, 10, d.base, 300, d.queries, 20, 6, 10);
  assert.equal(ours.recall, recallAtK(found, gt.ids, 20, 10));
  const byKind = recallByKind(ours.hits, d.queryKind!, 10);
  const outliers = d.queryKind!.reduce((a, b) => a + b, 0);
  assert.ok(byKind.mixture !== null && byKind.outlier !== null);
  assert.ok(Math.abs((byKind.mixture * (20 - outliers) + byKind.outlier * outliers) / 20 - ours.recall) < 1e-12);
});

test('metrics: median and latency percentiles', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const lat = new Float64Array(100).map((_, i) => 100 - i); // 1..100
  assert.deepEqual(latencyStats(lat), { mean: 50.5, p50: 50, p99: 99 });
});

test('ground truth: computed once, then read from the cache; a corrupted cache is detected and recomputed', async () => {
  const dir = await tempDir();
  try {
    const d = clusteredGaussian({ n: 400, nQueries: 15, dim: 8, seed: 2 });
    const key = datasetKey({ n: 400, seed: 2 }, [d.base, d.queries]);
    const logs: string[] = [];
    const req = { cacheDir: dir, label: 'tiny', key, base: d.base, nBase: 400, queries: d.queries, nQueries: 15, dim: 8, depth: 12, log: (l: string) => logs.push(l) };
    const exact = bruteForceKnn(d.base, 400, d.queries, 15, 8, 12).ids;

    const first = await cachedGroundTruth(req);
    assert.equal(first.source, 'computed');
    assert.deepEqual(first.ids, exact);
    const paths = truthCachePaths(req);
    assert.ok(existsSync(paths.ivecs) && existsSync(paths.meta));

    const second = await cachedGroundTruth(req);
    assert.equal(second.source, 'cache');
    assert.deepEqual(second.ids, exact);
    assert.equal(logs.length, 0);

    // flip one id byte: same size, wrong checksum
    const bytes = await readFile(paths.ivecs);
    bytes[4 + 4 * 3] ^= 0x01;
    await writeFile(paths.ivecs, bytes);
    const third = await cachedGroundTruth(req);
    assert.equal(third.source, 'computed');
    assert.deepEqual(third.ids, exact);
    assert.match(logs[0], /unusable \(checksum/);

    // a damaged sidecar
    await writeFile(paths.meta, '{"format": "zgq-bench-gr');
    const fourth = await cachedGroundTruth(req);
    assert.equal(fourth.source, 'computed');
    assert.match(logs[1], /sidecar unreadable/);
    assert.equal((await cachedGroundTruth(req)).source, 'cache');

    // other data under another key never reads this entry
    const other = clusteredGaussian({ n: 400, nQueries: 15, dim: 8, seed: 3 });
    assert.notEqual(datasetKey({ n: 400, seed: 3 }, [other.base, other.queries]), key);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('pareto: frontier, layers and best point at a target', () => {
  const pts = [
    { recall: 0.5, qps: 100 },
    { recall: 0.6, qps: 90 },
    { recall: 0.6, qps: 80 }, // dominated by (0.6, 90)
    { recall: 0.7, qps: 95 }, // dominates (0.6, 90)
    { recall: 0.9, qps: 40 },
    { recall: 0.85, qps: 30 }, // dominated by (0.9, 40)
    { recall: 0.99, qps: 10 },
  ];
  assert.deepEqual(paretoFrontier(pts), [pts[0], pts[3], pts[4], pts[6]]);
  const layers = paretoLayers(pts, 2);
  assert.deepEqual(layers[1], [pts[1], pts[5]]);
  assert.equal(bestAtTarget(pts, 0.9), pts[4]);
  assert.equal(bestAtTarget(pts, 0.95), pts[6]);
  assert.equal(bestAtTarget(pts, 0.999), undefined);
  assert.deepEqual(paretoFrontier([]), []);
});

test('summary: best QPS per series at each target and ZGQ ratios to hnswlib-node and usearch', () => {
  const p = (series: string, library: SummaryPoint['library'], recall: number, qps: number, ef: number): SummaryPoint => ({ series, library, recall, qps, params: { ef } });
  const rows = targetSummary(
    [
      p('ZGQ', 'zgq', 0.92, 3000, 1), p('ZGQ', 'zgq', 0.96, 2000, 2), p('ZGQ', 'zgq', 0.991, 800, 3),
      p('hnswlib-node', 'hnswlib-node', 0.91, 1500, 10), p('hnswlib-node', 'hnswlib-node', 0.95, 1000, 20), p('hnswlib-node', 'hnswlib-node', 0.98, 500, 40),
      p('usearch', 'usearch', 0.99, 400, 64),
    ],
    [0.9, 0.95, 0.99],
  );
  assert.equal(rows.length, 3);
  assert.deepEqual(rows[0].best.map((b) => b.series), ['ZGQ', 'hnswlib-node', 'usearch']);
  assert.deepEqual(rows[0].best.map((b) => b.qps), [3000, 1500, 400]);
  assert.deepEqual(rows[0].ratios, { 'hnswlib-node': 2, usearch: 7.5 });
  assert.deepEqual(rows[1].best[1], { series: 'hnswlib-node', library: 'hnswlib-node', qps: 1000, recall: 0.95, params: { ef: 20 }, maxRecall: 0.98 });
  assert.equal(rows[1].ratios['hnswlib-node'], 2);
  // hnswlib never reaches 0.99: no ratio, and the best entry says how far it got
  assert.equal(rows[2].best[1].qps, null);
  assert.equal(rows[2].best[1].maxRecall, 0.98);
  assert.equal(rows[2].ratios['hnswlib-node'], null);
  assert.equal(rows[2].ratios.usearch, 2);
});

test('batch speed-up over one thread: the median of per-pass ratios, none without a one-thread cell', () => {
  const cell = (series: string, threads: number, passQps: number[]): ResultRecord => ({
    library: 'zgq', series, index: '', params: { ef: 16 }, mode: 'batch', threads, recall: 0.95, recallByKind: null,
    qps: median(passQps), passQps, latencyUs: null, pareto: false,
  });
  const one = cell('ZGQ', 1, [100, 200, 100]);
  const two = cell('ZGQ', 2, [180, 200, 190]);
  // paired per pass: 1.8, 1.0, 1.9 (the ratio of the medians, 190 / 100, would be 1.9)
  assert.equal(speedupOverOneThread(two, [one, two]), 1.8);
  assert.equal(speedupOverOneThread(cell('other', 2, [50]), [one, two]), null);
  assert.equal(speedupOverOneThread(cell('ZGQ', 2, [150, 300]), [cell('ZGQ', 1, [100, 100])]), 2.25);
});

test('pilot: a second pass, last point first, keeps the better of each point\'s two timings', async () => {
  const measured = [1, 2, 3].map((ef) => ({ point: { params: { ef } }, recall: 0.9, qps: 100 * ef }));
  const order: number[] = [];
  // the second pass finds point 1 faster than the first did (a slow spell), points 2 and 3 slower
  await secondPilotPass(measured, async (point) => {
    order.push(point.params.ef);
    return point.params.ef === 1 ? 500 : 50;
  });
  assert.deepEqual(order, [3, 2, 1]);
  assert.deepEqual(measured.map((m) => m.qps), [500, 200, 300]);
});

test('pilot: the fastest configurations at and just above each recall target are kept', () => {
  const at = (ef: number, recall: number, qps: number) => ({ point: { params: { ef } }, recall, qps });
  const measured = [at(1, 0.93, 900), at(2, 0.951, 500), at(3, 0.952, 700), at(4, 0.955, 300), at(5, 0.958, 100), at(6, 0.962, 400), at(7, 0.97, 200)];
  const efs = fastestAtTargets(measured, [0.95]).map((p) => p.params.ef);
  // reaching 0.95: 3 (700), 2 (500), 6 (400); reaching 0.96: 6 (400), 7 (200); never 1 (below)
  assert.deepEqual(efs, [3, 2, 6, 6, 7]);
  assert.deepEqual(fastestAtTargets(measured, [0.99]), []);
});

test('sweeps: ZGQ candidates skip rerank depths the pool cannot supply; PQ size divides the dimension', () => {
  const plan = { zgq: { ef: [16, 64], nProbe: [1, 4], rerank: [2, 8, 32] } } as SweepPlan;
  const c = zgqCandidates(plan, 10);
  const pq = c.filter((p) => p.params.exact === undefined && p.params.fullScan === undefined && p.params.fastScan === undefined);
  assert.ok(pq.every((p) => 10 * p.params.rerank <= 2 * p.params.ef));
  assert.deepEqual(
    pq.filter((p) => p.params.nProbe === 1).map((p) => [p.params.ef, p.params.rerank]),
    [[16, 2], [64, 2], [64, 8]],
  );
  // the exact walk: every ef and nProbe, no rerank, with the index's zone scans, without, and (from
  // nProbe 2, where there is a choice of zones) scanning every selected zone within twice the nearest's distance
  const wide = { exact: 1, scan: 4, scanRatio: WIDE_SCAN_RATIO };
  assert.deepEqual(
    c.filter((p) => p.params.exact === 1).map((p) => p.params),
    [
      { ef: 16, nProbe: 1, exact: 1 }, { ef: 64, nProbe: 1, exact: 1 }, { ef: 16, nProbe: 1, exact: 1, scan: 0 }, { ef: 64, nProbe: 1, exact: 1, scan: 0 },
      { ef: 16, nProbe: 4, exact: 1 }, { ef: 64, nProbe: 4, exact: 1 }, { ef: 16, nProbe: 4, exact: 1, scan: 0 }, { ef: 64, nProbe: 4, exact: 1, scan: 0 },
      { ef: 16, nProbe: 4, ...wide }, { ef: 64, nProbe: 4, ...wide },
    ],
  );
  // and the adapter searches each point with exactly those knobs
  assert.deepEqual(searchOptions({ params: { ef: 64, nProbe: 4, rerank: 8 } }), { ef: 64, nProbe: 4, rerank: 8 });
  assert.deepEqual(searchOptions({ params: { ef: 16, nProbe: 4, exact: 1, scan: 0 } }), { ef: 16, nProbe: 4, scan: 0, traversal: 'exact' });
  assert.deepEqual(searchOptions({ params: { ef: 16, nProbe: 4, ...wide } }), { ef: 16, nProbe: 4, scan: 4, scanRatio: 2, traversal: 'exact' });
  // then the fast scan over its re-rank depths, and one point of the scan traversal, last
  assert.deepEqual(c.filter((p) => p.group === 'fastscan').map((p) => p.params.rerank), [2, 4, 8, 16, 32, 64, 128]);
  assert.deepEqual(c.at(-1), { params: { fullScan: 1 }, group: 'scan' });
  assert.deepEqual(searchOptions({ params: { fullScan: 1 } }), { traversal: 'scan' });
  assert.deepEqual(searchOptions({ params: { fastScan: 1, rerank: 16 } }), { traversal: 'fastscan', rerank: 16 });
  // each group rises in ef (the pilot's early stop relies on it)
  for (const group of new Set(c.map((p) => p.group))) {
    const efs = c.filter((p) => p.group === group).map((p) => p.params.ef);
    assert.deepEqual(efs, [...efs].sort((a, b) => a - b), group);
  }
  assert.equal(sweepExhausted([0.5, 0.9, 0.99]), false);
  assert.equal(sweepExhausted([0.9, 0.9995]), false, 'one value past saturation is still measured');
  assert.equal(sweepExhausted([0.9, 0.9995, 1]), true);
  assert.equal(sweepExhausted([0.96, 0.993, 0.9932, 0.9934]), true, 'a flat tail (IVF-PQ ceiling) stops');
  assert.equal(sweepExhausted([0.3, 0.3, 0.3]), false, 'a flat start does not');
  assert.equal(pqSubquantizers(128), 32);
  assert.equal(pqSubquantizers(784), 28);
  assert.equal(pqSubquantizers(16), 16);
});

test('a tiny run produces a report that matches the JSON schema, plus its plot and summary', async () => {
  const dir = await tempDir();
  try {
    const spec: SyntheticSpec = { kind: 'synthetic', name: 'tiny', description: 'tiny clustered set', n: 1500, nQueries: 30, dim: 16, seed: 3, outlierFraction: 0.3 };
    const plan: SweepPlan = {
      hnswEf: [10, 40], nprobe: [1, 4], zgq: { ef: [16, 64], nProbe: [1, 4], rerank: [2, 8] },
      pilotQueries: 20, pilotLayers: 1, maxPilotKeep: 3, minQueriesPerPass: 60, minBatchQueriesPerPass: 60,
    };
    const report = await runBench({
      datasets: [spec], k: 5, passes: 3, quick: true, libraries: ['zgq', 'hnswlib-node', 'usearch', 'faiss'], batch: true,
      dataDir: dir, cacheDir: join(dir, 'cache'), command: 'test', plan,
    });
    const json = JSON.parse(JSON.stringify(report)) as unknown;
    assert.deepEqual(validateReport(json), []);
    assert.equal(report.libraries.length, 4);
    for (const lib of report.libraries) {
      if (lib.status !== 'ok') assert.ok(lib.detail.length > 0, `${lib.library} says why it is ${lib.status}`);
    }
    const ds = report.datasets[0];
    assert.equal(ds.groundTruth.source, 'computed');
    assert.deepEqual(ds.queryKinds, { mixture: 21, outlier: 9 });
    const zgq = ds.results.filter((r) => r.series === 'ZGQ' && r.mode === 'single');
    assert.ok(zgq.length >= 1);
    const d = new ZGQIndex({ dim: 16 }).options.search;
    assert.ok(zgq.some((r) => r.params.ef === d.ef && r.params.nProbe === d.nProbe && r.params.rerank === d.rerank), 'the default configuration is always timed');
    for (const r of ds.results) {
      assert.equal(r.passQps.length, 3);
      assert.ok(r.recallByKind !== null);
    }
    const ok = report.libraries.filter((l) => l.status === 'ok').map((l) => l.library);
    assert.deepEqual([...new Set(ds.builds.map((b) => b.library))].sort(), ok.filter((l) => !ds.skipped.some((s) => s.library === l)).sort());
    if (ok.includes('faiss')) assert.ok(ds.groundTruth.faissFlatRecall! > 0.999, 'FAISS exact search agrees with the ground truth');
    // a schema violation is reported, not ignored
    const broken = JSON.parse(JSON.stringify(report)) as { datasets: { results: { recall: unknown }[] }[] };
    broken.datasets[0].results[0].recall = 'high';
    assert.match(validateReport(broken)[0], /^\$\.datasets\[0\]\.results\[0\]\.recall: expected a finite number/);

    const written = await writeReport(report, join(dir, 'out'));
    assert.deepEqual(validateReport(JSON.parse(await readFile(written.json, 'utf8'))), []);
    if (written.plots.length) assert.match(await readFile(written.plots[0], 'utf8'), /^<svg[^>]*>[\s\S]*recall@5/);
    const md = await readFile(written.summary, 'utf8');
    assert.match(md, /### tiny/);
    assert.match(md, /ZGQ \/ hnswlib-node/);
    // batch mode: 2-thread rows say how much faster they were than the same configuration on one
    // (with more than one core: the bench times batches on 1 and on all of them)
    if (report.settings.batchThreads.length > 1) {
      const threads = report.settings.batchThreads[1];
      assert.match(md, new RegExp(`\\| ZGQ \\| [^|]+ \\| ${threads} \\| [\\d.]+ \\| [\\d,]+ \\| \\d+\\.\\d\\d× \\|`));
    }
    assert.equal(md, summaryMarkdown(report, written.plots.length ? { tiny: 'recall-qps-tiny.svg' } : {}));
    assert.match(datasetTable(ds, 5), /best single-thread QPS at recall target/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('filtered search scenario: every filter, anti-correlated included, gets min(k, admitted) admitted results at recall >= 0.95', async () => {
  const dir = await tempDir();
  try {
    const spec: SyntheticSpec = { kind: 'synthetic', name: 'tiny-filtered', description: 'tiny clustered set', n: 1500, nQueries: 30, dim: 16, seed: 3, outlierFraction: 0.3 };
    const plan: SweepPlan = {
      hnswEf: [10], nprobe: [1], zgq: { ef: [16, 64], nProbe: [4], rerank: [8] },
      pilotQueries: 10, pilotLayers: 1, maxPilotKeep: 2, minQueriesPerPass: 30, minBatchQueriesPerPass: 30,
    };
    const report = await runBench({
      datasets: [spec], k: 5, passes: 2, quick: true, libraries: ['zgq'], batch: false, filtered: true,
      dataDir: dir, cacheDir: join(dir, 'cache'), command: 'test', plan,
    });
    const filtered = report.datasets[0].filtered!;
    // the anti-correlated filter also on float32 rows (the default stores binary16)
    assert.deepEqual(filtered.rows.map((r) => [r.filter, r.selectivity, r.queries, r.storage]), [
      ['none', 1, 30, 'float16'], ['uncorrelated', 0.01, 30, 'float16'], ['uncorrelated', 0.1, 30, 'float16'], ['uncorrelated', 0.5, 30, 'float16'],
      ['anti-correlated', 0.95, 30, 'float16'], ['anti-correlated', 0.95, 30, 'float32'],
    ]);
    for (const r of filtered.rows) {
      assert.equal(r.outside, 0, `${r.filter} ${r.selectivity}: results outside the filter`);
      assert.equal(r.short, 0, `${r.filter} ${r.selectivity}: queries short of min(k, admitted) results`);
      assert.ok(r.recall >= 0.95, `${r.filter} ${r.selectivity}: recall ${r.recall}`);
      assert.equal(r.passQps.length, 2);
    }
    assert.deepEqual(filtered.params, { ef: 64, nProbe: 16, rerank: 8 });
    const json = JSON.parse(JSON.stringify(report)) as { datasets: { filtered: { rows: { recall: unknown }[] } }[] };
    assert.deepEqual(validateReport(json), []);
    json.datasets[0].filtered.rows[0].recall = 2;
    assert.match(validateReport(json)[0], /^\$\.datasets\[0\]\.filtered\.rows\[0\]\.recall: expected a value in \[0, 1\]/);
    assert.match(summaryMarkdown(report, {}), /Filtered search[\s\S]*\| anti-correlated \| 95 % \| 30 \| float32 \|/);
    assert.match(datasetTable(report.datasets[0], 5), /filtered search/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A float32 `.npy` file of `n` rows of `dim` (format 1.0, header padded to 64 bytes). */
function npyBytes(data: Float32Array, n: number, dim: number): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${dim}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

const FILE_PLAN: SweepPlan = {
  hnswEf: [10], nprobe: [1], zgq: { ef: [16, 64], nProbe: [2, 8], rerank: [8] },
  pilotQueries: 10, pilotLayers: 1, maxPilotKeep: 2, minQueriesPerPass: 20, minBatchQueriesPerPass: 20,
};

test('file datasets: a user\'s .npy, with held-out queries, runs through the harness against exact ground truth', async () => {
  const dir = await tempDir();
  try {
    const d = clusteredGaussian({ n: 600, nQueries: 1, dim: 8, seed: 9 });
    const path = join(dir, 'my.npy');
    await writeFile(path, npyBytes(d.base, 600, 8));
    const spec = fileSpec(path, { nQueries: 20 });
    assert.equal(spec.name, 'file:my.npy');
    assert.match(spec.description, /20 queries held out of the base \(seed 1\) and removed from it/);
    const ds = await loadDataset(spec, { dataDir: '/nonexistent', cacheDir: join(dir, 'cache'), k: 5 });
    assert.equal(ds.nBase, 580);
    assert.equal(ds.nQueries, 20);
    // the held-out rows are the queries; none is left in the base (no query is at distance 0)
    const split = holdOut(d.base, 600, 8, 20, 1);
    assert.deepEqual(ds.queries, split.queries);
    assert.equal(new Set(split.rows).size, 20);
    const exact = bruteForceKnn(ds.base, 580, ds.queries, 20, 8, ds.truth.depth);
    assert.deepEqual(ds.truth.ids, exact.ids);
    for (let q = 0; q < 20; q++) assert.ok(exact.distances[q * ds.truth.depth] > 0, `query ${q} finds itself`);

    const report = await runBench({
      datasets: [spec], k: 5, passes: 1, quick: true, libraries: ['zgq'], batch: false, dataDir: '/nonexistent', cacheDir: join(dir, 'cache'), command: 'test', plan: FILE_PLAN,
    });
    assert.deepEqual(validateReport(JSON.parse(JSON.stringify(report))), []);
    const r = report.datasets[0];
    assert.equal(r.name, 'file:my.npy');
    assert.equal(r.groundTruth.source, 'cache');
    assert.equal(r.nBase, 580);
    const zgq = r.results.filter((x) => x.series === 'ZGQ');
    assert.ok(zgq.length >= 1);
    const best = zgq.reduce((a, b) => (b.recall > a.recall ? b : a));
    assert.ok(best.recall >= 0.9, `recall ${best.recall}`);
    assert.match(summaryMarkdown(report, {}), /### file:my\.npy/);
    assert.match(datasetTable(r, 5), /file:my\.npy/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('file datasets: a queries file, cosine, HDF5 train/test, and one-line errors for bad inputs', async () => {
  const dir = await tempDir();
  try {
    const d = clusteredGaussian({ n: 300, nQueries: 10, dim: 6, seed: 4 });
    const base = join(dir, 'base.fvecs');
    const queries = join(dir, 'q.fvecs');
    await writeFile(base, encodeFvecs(d.base, 6));
    await writeFile(queries, encodeFvecs(d.queries, 6));
    const o = { dataDir: '/nonexistent', cacheDir: join(dir, 'cache'), k: 5 };
    const ds = await loadDataset(fileSpec(base, { queries, nQueries: 7, metric: 'cosine' }), o);
    assert.equal(ds.nBase, 300);
    assert.equal(ds.nQueries, 7);
    for (let i = 0; i < 7; i++) {
      const norm = Math.hypot(...ds.queries.subarray(i * 6, i * 6 + 6));
      assert.ok(Math.abs(norm - 1) < 1e-5);
    }
    const exact = bruteForceKnn(ds.base, 300, ds.queries, 7, 6, ds.truth.depth);
    assert.deepEqual(ds.truth.ids, exact.ids);
    assert.match(ds.description, /cosine/);

    await h5wasm.ready;
    const h5 = join(dir, 'ann.hdf5');
    const f = new h5wasm.File(h5, 'w');
    f.create_dataset({ name: 'train', data: d.base, shape: [300, 6] });
    f.create_dataset({ name: 'test', data: d.queries, shape: [10, 6] });
    f.close();
    const ann = await loadDataset(fileSpec(h5), o);
    assert.equal(ann.name, 'file:ann.hdf5');
    assert.deepEqual([ann.nBase, ann.nQueries], [300, 10]);
    assert.deepEqual(ann.queries, d.queries);

    await expectZgq(() => loadDataset(fileSpec(join(dir, 'none.npy')), o), 'IO', /file '.*none\.npy' does not exist/);
    await writeFile(join(dir, 'q7.fvecs'), encodeFvecs(new Float32Array(14), 7));
    await expectZgq(() => loadDataset(fileSpec(base, { queries: join(dir, 'q7.fvecs') }), o), 'INVALID_ARGUMENT', /dimension 6, queries in .*q7\.fvecs 7/);
    await expectZgq(() => loadDataset(fileSpec(base, { queries, nQueries: 11 }), o), 'INVALID_ARGUMENT', /11 queries asked, .*q\.fvecs holds 10/);
    await expectZgq(() => loadDataset(fileSpec(base, { nQueries: 300 }), o), 'INVALID_ARGUMENT', /has 300 rows, too few to hold out 300 queries/);
    const program = () => registerBench(new Command('zgq').exitOverride());
    await expectZgq(() => program().parseAsync(['node', 'zgq', 'bench', '--base', join(dir, 'none.npy')]), 'IO', /none\.npy' does not exist/);
    await expectZgq(() => program().parseAsync(['node', 'zgq', 'bench', '--queries-file', queries]), 'INVALID_ARGUMENT', /--queries-file needs --base/);
    await expectZgq(() => program().parseAsync(['node', 'zgq', 'bench', '--base', base, '--metric', 'ip']), 'INVALID_ARGUMENT', /unknown metric 'ip'/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('peers: a package that is not installed is reported as missing with the reason', () => {
  const got = loadPackage('zgq-no-such-peer-package');
  assert.equal(got.ok, false);
  assert.match((got as { reason: string }).reason, /not installed \(npm install -D zgq-no-such-peer-package\)/);
});

test('cli: bench rejects an unknown dataset or library and a missing data folder with one-line errors', async () => {
  const program = () => registerBench(new Command('zgq').exitOverride());
  await expectZgq(() => program().parseAsync(['node', 'zgq', 'bench', '--dataset', 'nope']), 'INVALID_ARGUMENT', /unknown dataset 'nope'/);
  await expectZgq(() => program().parseAsync(['node', 'zgq', 'bench', '--dataset', 'siftsmall', '--data-dir', '/nonexistent/zgq']), 'IO', /siftsmall_base\.fvecs' does not exist/);
  await expectZgq(() => program().parseAsync(['node', 'zgq', 'bench', '--dataset', 'synthetic-10k', '--libraries', 'zgq,annoy']), 'INVALID_ARGUMENT', /unknown library 'annoy'/);
});

test('bench paths: a clone keeps everything in the repository; an install writes nothing inside node_modules', () => {
  const clone = benchPaths('/src/zgq', {}, '/work', '/home/u');
  assert.deepEqual(clone, { data: '/src/shared/data', cache: '/src/zgq/bench/results/cache', out: '/src/zgq/bench/results' });
  const installed = benchPaths('/app/node_modules/zgq', {}, '/app', '/home/u');
  assert.deepEqual(installed, { data: '/app/data', cache: '/home/u/.cache/zgq', out: '/app/zgq-bench' });
  assert.ok(!Object.values(installed).some((p) => p.includes('node_modules')));
  assert.equal(benchPaths('/app/node_modules/zgq', { XDG_CACHE_HOME: '/var/cache', ZGQ_DATA_DIR: '/datasets' }, '/app', '/home/u').cache, '/var/cache/zgq');
  assert.equal(benchPaths('/app/node_modules/zgq', { ZGQ_DATA_DIR: '/datasets' }, '/app', '/home/u').data, '/datasets');
  assert.equal(isInstalled('/app/node_modules/zgq'), true);
  assert.equal(isInstalled('/work/main'), false);
});
