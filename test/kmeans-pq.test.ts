// k-means and product quantization units: cluster recovery, determinism, empty-cluster repair,
// mini-batch mode, PQ reconstruction error against the data variance, uneven subspaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKernels } from '../src/kernels/wasm.js';
import { kmeans } from '../src/kmeans.js';
import { decodePQ, encodePQ, subspaceOffset, trainPQ } from '../src/pq.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { buildZones } from '../src/zones.js';

const kernels = createKernels();

function meanSquaredError(x: Float32Array, y: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return s / x.length;
}

test('k-means recovers well separated clusters, deterministically for a seed', () => {
  const dim = 8;
  const ds = clusteredGaussian({ n: 2000, nQueries: 0, dim, clusters: 10, spread: 0.05, seed: 3 });
  const a = kmeans(kernels, ds.base, 2000, dim, 10, { seed: 1 });
  const b = kmeans(kernels, ds.base, 2000, dim, 10, { seed: 1 });
  assert.deepEqual(a.centroids, b.centroids);
  // every true centre has a centroid within a few spreads of it
  const centres = ds.centres!;
  for (let c = 0; c < 10; c++) {
    let best = Infinity;
    for (let k = 0; k < 10; k++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += (centres[c * dim + j] - a.centroids[k * dim + j]) ** 2;
      best = Math.min(best, d);
    }
    assert.ok(best < 0.05, `centre ${c} is ${best} from the nearest centroid`);
  }
  assert.ok(a.inertia < 0.05 * 0.05 * dim * 1.5, `inertia ${a.inertia}`);
  const c = kmeans(kernels, ds.base, 2000, dim, 10, { seed: 2 });
  assert.notDeepEqual(c.centroids, a.centroids);
});

test('k-means repairs empty clusters (k larger than the distinct points)', () => {
  const dim = 4;
  // 3 distinct points repeated: at most 3 non-degenerate clusters for k = 6
  const x = new Float32Array(300 * dim);
  for (let i = 0; i < 300; i++) x.fill(i % 3, i * dim, i * dim + dim);
  const { centroids } = kmeans(kernels, x, 300, dim, 6, { seed: 4 });
  assert.equal(centroids.length, 6 * dim);
  for (const v of centroids) assert.ok(Number.isFinite(v));
  // zones drop what stays empty: every zone has members, ranges cover all rows
  const zones = buildZones(kernels, x, 300, dim, 6, 4);
  assert.ok(zones.nZones >= 3 && zones.nZones <= 6);
  for (let z = 0; z < zones.nZones; z++) assert.ok(zones.zoneStart[z + 1] > zones.zoneStart[z]);
  assert.equal(zones.zoneStart[zones.nZones], 300);
});

test('mini-batch k-means on large inputs stays close to full Lloyd', () => {
  const dim = 16;
  const ds = clusteredGaussian({ n: 20000, nQueries: 0, dim, clusters: 20, seed: 5 });
  const full = kmeans(kernels, ds.base, 20000, dim, 20, { seed: 1, miniBatchThreshold: 1e9 });
  const mini = kmeans(kernels, ds.base, 20000, dim, 20, { seed: 1, miniBatchThreshold: 64, miniBatchSize: 16, iterations: 40 });
  assert.ok(mini.inertia < full.inertia * 1.25, `mini-batch ${mini.inertia} vs full ${full.inertia}`);
});

test('zones are contiguous, sized around sqrt(n), each medoid inside its zone', () => {
  const dim = 16;
  const ds = clusteredGaussian({ n: 10000, nQueries: 0, dim, seed: 6 });
  const zones = buildZones(kernels, ds.base, 10000, dim, 100, 1);
  assert.ok(zones.nZones > 90 && zones.nZones <= 100);
  assert.ok(zones.nGroups >= 8 && zones.nGroups <= 10, 'a two-level tree over many zones');
  assert.deepEqual(Array.from(zones.order).sort((a, b) => a - b), Array.from({ length: 10000 }, (_, i) => i));
  for (let z = 0; z < zones.nZones; z++) {
    assert.ok(zones.zoneEntry[z] >= zones.zoneStart[z] && zones.zoneEntry[z] < zones.zoneStart[z + 1]);
  }
  assert.equal(zones.groupStart[zones.nGroups], zones.nZones);
});

test('PQ reconstruction error is far below the data variance; uneven subspaces work', () => {
  const ds = clusteredGaussian({ n: 5000, nQueries: 0, dim: 30, seed: 7 });
  let mean = 0;
  for (const v of ds.base) mean += v;
  mean /= ds.base.length;
  let variance = 0;
  for (const v of ds.base) variance += (v - mean) ** 2;
  variance /= ds.base.length;
  for (const m of [30, 8, 7]) {
    assert.equal(subspaceOffset(m, 30, m), 30);
    const codebooks = trainPQ(kernels, ds.base, 5000, 30, m, { seed: 1 });
    const codes = new Uint8Array(5000 * m);
    encodePQ(kernels, ds.base, 5000, 30, m, codebooks, codes);
    const decoded = new Float32Array(5000 * 30);
    const row = new Float32Array(30);
    for (let i = 0; i < 5000; i++) {
      decodePQ(codebooks, codes, i, 30, m, row);
      decoded.set(row, i * 30);
    }
    const mse = meanSquaredError(ds.base, decoded);
    assert.ok(mse < variance * (m === 30 ? 0.02 : 0.2), `m=${m}: mse ${mse} vs variance ${variance}`);
    // encoding picks the nearest centroid: re-encoding the decoded rows changes nothing
    const again = new Uint8Array(5000 * m);
    encodePQ(kernels, decoded, 5000, 30, m, codebooks, again);
    assert.deepEqual(again, codes);
    // rows made one at a time (as a build makes residuals) train and encode exactly as the flat rows do
    const source = (i: number, into: Float32Array) => into.set(ds.base.subarray(i * 30, (i + 1) * 30));
    assert.deepEqual(trainPQ(kernels, source, 5000, 30, m, { seed: 1 }), codebooks, `m=${m}: codebooks from a row source`);
    const fromSource = new Uint8Array(5000 * m);
    encodePQ(kernels, source, 5000, 30, m, codebooks, fromSource);
    assert.deepEqual(fromSource, codes, `m=${m}: codes from a row source`);
  }
});
