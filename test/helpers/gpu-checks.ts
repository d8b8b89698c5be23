// The GPU checks test/gpu.test.ts runs in a process of their own (Dawn reads the Vulkan driver to
// use from the environment it starts with): the WGSL range scan against its TypeScript twin, and
// searchBatch on the GPU against the CPU and exact truth. Prints one JSON line of results; the
// test asserts on them.
import { gpuDevice } from '../../src/gpu/webgpu.js';
import { GpuRowScan } from '../../src/gpu/scan.js';
import { rangeTopK } from '../../src/kernels/reference/range-top-k.js';
import { selectZones } from '../../src/kernels/reference/search.js';
import { encodeHalf } from '../../src/kernels/reference/half.js';
import { METRIC_IP, METRIC_L2 } from '../../src/kernels/wasm.js';
import { ZGQIndex } from '../../src/index.js';
import { clusteredGaussian } from '../../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../../src/data/groundtruth.js';
import { Rng } from '../../src/random.js';
import { GpuNeighbours, nodeZones } from '../../src/gpu/neighbours.js';
import { createKernels } from '../../src/kernels/wasm.js';
import { buildZones } from '../../src/zones.js';
import { InputRows } from '../../src/input.js';

const out: Record<string, unknown> = {};
const g = await gpuDevice();
out.device = g.ok ? { adapter: g.adapter, fallback: g.fallback } : { reason: g.reason };
if (!g.ok) {
  // no adapter: a batch asked for the GPU runs on the CPU and says why
  const index = new ZGQIndex({ dim: 8 });
  await index.build(Float32Array.from({ length: 8 * 600 }, (_, i) => Math.sin(i)), { threads: 1 });
  await index.searchBatch(Float32Array.from({ length: 8 * 4 }, (_, i) => Math.cos(i)), 5, { device: 'gpu' });
  out.noGpu = index.stats().device;
  console.log(JSON.stringify(out));
  process.exit(0);
}

/**
 * Kernel against twin: ids equal wherever the twin's distances leave a gap (ties and float
 * rounding may order rows within `eps` of each other differently), distances within a relative 1e-5.
 */
function compareTopK(
  got: { rows: Uint32Array; distances: Float32Array }, want: { rows: Uint32Array; distances: Float32Array }, nq: number, k: number,
): { idMismatches: number; worstRelative: number } {
  let idMismatches = 0;
  let worstRelative = 0;
  for (let i = 0; i < nq * k; i++) {
    const w = want.distances[i];
    const d = got.distances[i];
    if (w === Infinity || d === Infinity) {
      if (w !== d || got.rows[i] !== want.rows[i]) idMismatches++;
      continue;
    }
    worstRelative = Math.max(worstRelative, Math.abs(d - w) / Math.max(1e-6, Math.abs(w)));
    const eps = 1e-5 * Math.max(1, Math.abs(w));
    const next = i % k < k - 1 ? want.distances[i + 1] : Infinity;
    const prev = i % k > 0 ? want.distances[i - 1] : -Infinity;
    if (got.rows[i] !== want.rows[i] && next - w > eps && w - prev > eps) idMismatches++;
  }
  return { idMismatches, worstRelative };
}

const kernel: { name: string; compared: number; idMismatches: number; worstRelative: number }[] = [];
const rng = new Rng(7);
const random = () => rng.next();
for (const dim of [16, 13, 96]) {
  for (const half of [false, true]) {
    for (const metric of [METRIC_L2, METRIC_IP]) {
      // k buckets 16, 32, 64 and 128
      for (const k of [1, 20, 33, 100]) {
        const n = 700;
        const nq = 9;
        const values = Float32Array.from({ length: n * dim }, () => random() * 2 - 1);
        // duplicate rows: equal distances, ordered by row on both sides
        values.copyWithin(5 * dim, 4 * dim, 5 * dim);
        const rows = half ? Uint16Array.from(values, encodeHalf) : values;
        const queries = Float32Array.from({ length: nq * dim }, () => random() * 2 - 1);
        const per = 3;
        const ranges = new Uint32Array(nq * per * 2);
        for (let q = 0; q < nq; q++) {
          const a = Math.floor(random() * 300);
          ranges.set([a, a + 150, 400 + q * 20, 400 + q * 20 + (q % 3 === 0 ? 0 : 60), 650, n], q * per * 2);
        }
        const removed = new Uint8Array(Math.ceil(n / 8));
        for (let i = 0; i < n; i += 7) removed[i >> 3] |= 1 << (i & 7);
        const scan = await GpuRowScan.create(g.device, { n, dim, half, metric }, n + 5);
        // written in two parts, as rows appended in place are (the second starting mid-word for odd binary16 rows)
        scan.write(rows, 0, 301);
        scan.write(rows, 301, n);
        for (const drop of [null, removed]) {
          const got = await scan.scan(queries, nq, ranges, per, k, drop);
          const want = rangeTopK(rows, half, dim, metric, queries, nq, ranges, per, k, drop);
          kernel.push({ name: `dim ${dim} ${half ? 'f16' : 'f32'} ${metric === METRIC_IP ? 'ip' : 'l2'} k ${k}${drop ? ' removed' : ''}`, compared: nq * k, ...compareTopK(got, want, nq, k) });
        }
        scan.destroy();
      }
    }
  }
}
out.kernel = kernel;

// searchBatch on the GPU: every row scanned (exact over the stored rows) equals the CPU's scan;
// the zones' scan reaches the recall of the index's own search; what the GPU cannot take says why
const dim = 16;
const ds = clusteredGaussian({ n: 4000, nQueries: 200, dim, seed: 3, outlierFraction: 0.2 });
const truth = bruteForceKnn(ds.base, 4000, ds.queries, 200, dim, 10).ids;
const index = new ZGQIndex({ dim });
await index.build(ds.base, { threads: 1 });
const cpuScan = await index.searchBatch(ds.queries, 10, { traversal: 'scan' });
const gpuScan = await index.searchBatch(ds.queries, 10, { traversal: 'scan', device: 'gpu' });
out.scanDevice = index.stats().device;
out.scanSame = cpuScan.ids.every((id, i) => id === gpuScan.ids[i]);
out.scanDistanceWorst = Math.max(...cpuScan.distances.map((d, i) => Math.abs(d - gpuScan.distances[i]) / Math.max(1e-6, Math.abs(d))));
const cpu = await index.searchBatch(ds.queries, 10);
const gpu = await index.searchBatch(ds.queries, 10, { device: 'gpu' });
out.recall = { cpu: recallAtK(cpu.ids, truth, 200, 10), gpu: recallAtK(gpu.ids, truth, 200, 10) };
index.remove(Array.from(truth.subarray(0, 10)));
const afterRemove = await index.searchBatch(ds.queries, 10, { device: 'gpu' });
out.removedReturned = Array.from(truth.subarray(0, 10)).filter((id) => afterRemove.ids.includes(id)).length;
// the first add lays the index out afresh, the next goes in place: both found on the GPU
await index.add(ds.queries.subarray(0, 3 * dim), [70001, 70002, 70003]);
out.appendedFound = Array.from((await index.searchBatch(ds.queries.subarray(0, 3 * dim), 1, { device: 'gpu' })).ids);
await index.add(ds.queries.subarray(3 * dim, 5 * dim), [70004, 70005]);
out.inPlace = index.stats().appended;
out.inPlaceFound = Array.from((await index.searchBatch(ds.queries.subarray(3 * dim, 5 * dim), 1, { device: 'gpu' })).ids);
out.appendedDevice = index.stats().device;
// aborted while the GPU runs: ABORTED, as on the CPU
const stop = new AbortController();
const many = new Float32Array(3000 * dim).map((_, i) => ds.queries[i % ds.queries.length]);
const aborted = index.searchBatch(many, 10, { device: 'gpu', traversal: 'scan', signal: stop.signal });
setTimeout(() => stop.abort(), 5);
out.aborted = await aborted.then(() => 'finished', (err: { code?: string }) => err.code);
// a build whose zone assignment runs on the GPU: the same zones up to ties, the same recall
const gpuBuilt = new ZGQIndex({ dim });
await gpuBuilt.build(ds.base, { threads: 1, device: 'gpu' });
out.buildDevice = gpuBuilt.stats().device;
const cpuBuilt = new ZGQIndex({ dim });
await cpuBuilt.build(ds.base, { threads: 1 });
const fromGpu = await gpuBuilt.searchBatch(ds.queries, 10);
const fromCpu = await cpuBuilt.searchBatch(ds.queries, 10);
out.buildRecall = { gpu: recallAtK(fromGpu.ids, truth, 200, 10), cpu: recallAtK(fromCpu.ids, truth, 200, 10) };
out.buildSameZones = JSON.stringify(gpuBuilt.stats().zoneSizes) === JSON.stringify(cpuBuilt.stats().zoneSizes);
// its graph from the GPU's candidates: the same on one thread and two; per-zone graphs on the CPU
const gpuBuilt2 = new ZGQIndex({ dim });
await gpuBuilt2.build(ds.base, { threads: 2, device: 'gpu' });
out.buildDevice2 = gpuBuilt2.stats().device;
const fromGpu2 = await gpuBuilt2.searchBatch(ds.queries, 10);
out.buildThreadsSame = fromGpu.ids.every((id, i) => id === fromGpu2.ids[i]) && fromGpu.distances.every((d, i) => d === fromGpu2.distances[i]);
// aborted while the GPU finds the graph's candidates: ABORTED, nothing left running
const stopBuild = new AbortController();
out.buildAborted = await new ZGQIndex({ dim })
  .build(ds.base, { threads: 2, device: 'gpu', signal: stopBuild.signal, onProgress: (phase, f) => { if (phase === 'graph' && f > 0) stopBuild.abort(); } })
  .then(() => 'finished', (err: { code?: string }) => err.code);
const perZone = new ZGQIndex({ dim, graph: 'per-zone' });
await perZone.build(ds.base, { threads: 1, device: 'gpu' });
out.buildPerZone = perZone.stats().device;
// the candidates themselves: each node's nearest rows in its nearest zones, as the twin finds them
{
  const kernels = createKernels();
  const n = 4000;
  const zones = buildZones(kernels, ds.base, n, dim, 60, 1);
  const rows = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) rows.set(ds.base.subarray(zones.order[i] * dim, (zones.order[i] + 1) * dim), i * dim);
  // each row's three nearest centroids, found here (the zones' own numbering: no empty cells to drop)
  const choices = 3;
  const nearest = new Uint32Array(n * choices);
  for (let r = 0; r < n; r++) {
    const row = ds.base.subarray(r * dim, (r + 1) * dim);
    nearest.set(selectZones(row, zones.centroids, zones.nZones, dim, METRIC_L2, new Float32Array(0), new Uint32Array(0), 0, 0, choices), r * choices);
  }
  const near = nodeZones(zones, nearest, choices, zones.nZones);
  const source = await GpuNeighbours.open(g.device, rows, new InputRows(ds.base, dim, null, n), zones, near, choices, METRIC_L2, 32, async () => {});
  const got = await source.candidates(1000, 2500);
  source.destroy();
  const ranges = new Uint32Array(1500 * choices * 2);
  for (let i = 0; i < 1500 * choices; i++) {
    const z = near[1000 * choices + i];
    ranges.set([zones.zoneStart[z], zones.zoneStart[z + 1]], i * 2);
  }
  const want = rangeTopK(rows, false, dim, METRIC_L2, rows.subarray(1000 * dim, 2500 * dim), 1500, ranges, choices, 32, null);
  out.candidates = { compared: want.rows.length, ...compareTopK({ rows: got.ids, distances: got.distances }, want, 1500, 32) };
}
const autoBuilt = new ZGQIndex({ dim });
await autoBuilt.build(ds.base, { threads: 1, device: 'auto' });
out.buildAuto = autoBuilt.stats().device;
const reasons: Record<string, unknown> = {};
await index.searchBatch(ds.queries, 10, { device: 'gpu', filter: [1, 2, 3] });
reasons.filter = index.stats().device;
await index.searchBatch(ds.queries, 200, { device: 'gpu' });
reasons.bigK = index.stats().device;
await index.searchBatch(ds.queries, 10, { device: 'auto' });
reasons.autoSmall = index.stats().device;
const twice = new Float32Array(400 * dim);
twice.set(ds.queries);
twice.set(ds.queries, 200 * dim);
await index.searchBatch(twice, 10, { device: 'auto' });
reasons.autoSoftware = index.stats().device;
// the device lost while a batch runs: that batch runs on the CPU (answered in full), the next
// opens a new device
const during = index.searchBatch(ds.queries, 10, { device: 'gpu' });
g.device.destroy();
const lostResult = await during;
reasons.lost = index.stats().device;
const onCpu = await index.searchBatch(ds.queries, 10);
out.lostAnswered = lostResult.ids.every((id, i) => id === onCpu.ids[i]);
await index.searchBatch(ds.queries, 10, { device: 'gpu' });
reasons.afterLost = index.stats().device;
// the device lost as the graph starts: the zones were assigned on the GPU, the graph linked on the CPU
const lostBuild = new ZGQIndex({ dim });
const g2 = await gpuDevice();
await lostBuild.build(ds.base, { threads: 1, device: 'gpu', onProgress: (phase) => { if (phase === 'graph' && g2.ok) g2.device.destroy(); } });
reasons.lostBuild = lostBuild.stats().device;
out.lostBuildRecall = recallAtK((await lostBuild.searchBatch(ds.queries, 10)).ids, truth, 200, 10);
out.reasons = reasons;
console.log(JSON.stringify(out));
process.exit(0);
