// The graph linked from given candidate neighbours (src/graph.ts linkCandidates, what a GPU build
// feeds with its k nearest rows): here the candidates come from the range scan's TypeScript twin, so
// this runs without a GPU. The graph keeps the adjacency's invariants, every node is reached from
// every zone entry, the lane count changes nothing, and a beam search over it finds the true
// neighbours. nodeZones maps the zone assignment's nearest centroids to the layout's zones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKernels, METRIC_L2 } from '../src/kernels/wasm.js';
import { buildZones, type ZoneLayout } from '../src/zones.js';
import { type CandidateSource, linkCandidates, unreachableNodes } from '../src/graph.js';
import { buildWorkers } from '../src/built.js';
import { candidateWidth, graphCandidates, nodeZones, NO_ZONE } from '../src/gpu/neighbours.js';
import { rangeTopK } from '../src/kernels/reference/range-top-k.js';
import { beamSearch, selectZones } from '../src/kernels/reference/search.js';
import { l2 } from '../src/kernels/reference/distance.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn } from '../src/data/groundtruth.js';
import { NO_ID } from '../src/ids.js';

const DIM = 24;
const N = 3000;
const R = 16;
const ds = clusteredGaussian({ n: N, nQueries: 100, dim: DIM, seed: 5 });

/** Each node's `choices` nearest zones by centroid, nearest first, ties to the lower zone (what the GPU's assignment gives, mapped). */
function nearestZones(zones: ZoneLayout, rows: Float32Array, choices: number): Uint32Array {
  const out = new Uint32Array(N * choices);
  for (let node = 0; node < N; node++) {
    const row = rows.subarray(node * DIM, (node + 1) * DIM);
    out.set(selectZones(row, zones.centroids, zones.nZones, DIM, METRIC_L2, new Float32Array(0), new Uint32Array(0), 0, 0, choices), node * choices);
  }
  return out;
}

/** A graph linked from the twin's candidates on `threads` lanes: its adjacency (R + 1 words a row), entries and rows in zone order. */
async function linked(threads: number) {
  const kernels = createKernels();
  const { arena } = kernels;
  const zones = buildZones(kernels, ds.base, N, DIM, 40, 1);
  const rows = new Float32Array(N * DIM);
  for (let i = 0; i < N; i++) rows.set(ds.base.subarray(zones.order[i] * DIM, (zones.order[i] + 1) * DIM), i * DIM);
  const near = nearestZones(zones, rows, graphCandidates.zones);
  const width = candidateWidth(R);
  const source: CandidateSource = {
    width,
    chunk: 700, // chunks that do not divide N
    candidates: async (from, to) => {
      const ranges = new Uint32Array((to - from) * graphCandidates.zones * 2);
      for (let i = 0; i < (to - from) * graphCandidates.zones; i++) {
        const z = near[from * graphCandidates.zones + i];
        ranges[i * 2] = zones.zoneStart[z];
        ranges[i * 2 + 1] = zones.zoneStart[z + 1];
      }
      const got = rangeTopK(rows, false, DIM, METRIC_L2, rows.subarray(from * DIM, to * DIM), to - from, ranges, graphCandidates.zones, width, null);
      return { ids: got.rows, distances: got.distances };
    },
  };
  const input = {
    vectorsPtr: arena.allocFrom(rows), n: N, dim: DIM, metric: METRIC_L2, zones,
    centroidsPtr: arena.allocFrom(zones.centroids), groupCentroidsPtr: 0, groupStartPtr: 0,
  };
  const workers = await buildWorkers(kernels, threads);
  const ptr = await linkCandidates(kernels, input, { degree: R, efConstruction: 64, alpha: 1.2, buildProbe: 2, shape: 'zone-rounds', seed: 3 }, source, workers);
  return { adjacency: arena.u32(ptr, N * (R + 1)).slice(), zones, rows };
}

test('a graph from candidates: invariants, every node reached from every entry, the same on 1 and 2 lanes', async () => {
  const one = await linked(1);
  const two = await linked(2);
  assert.deepEqual(two.adjacency, one.adjacency, 'the lane count changes nothing');
  const { adjacency, zones } = one;
  let links = 0;
  for (let node = 0; node < N; node++) {
    const count = adjacency[node * (R + 1)];
    assert.ok(count >= 1 && count <= R, `node ${node}: ${count} links`);
    const list = Array.from(adjacency.subarray(node * (R + 1) + 1, node * (R + 1) + 1 + count));
    assert.ok(!list.includes(node), `node ${node} links to itself`);
    assert.equal(new Set(list).size, count, `node ${node} repeats a neighbour`);
    assert.ok(list.every((v) => v < N));
    links += count;
  }
  assert.ok(links / N > R / 2, `mean out-degree ${links / N}`);
  for (const entry of zones.zoneEntry) assert.deepEqual(Array.from(unreachableNodes(adjacency, R, N, [entry], null)), [], `from entry ${entry}`);
});

test('a graph from candidates: a beam search over it finds the true neighbours', async () => {
  const { adjacency, zones, rows } = await linked(1);
  const nq = 100;
  const truth = bruteForceKnn(rows, N, ds.queries, nq, DIM, 10).ids;
  // the twin's beam search (ef 32) from the entries of the query's two nearest zones
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const query = ds.queries.subarray(q * DIM, (q + 1) * DIM);
    const entries = selectZones(query, zones.centroids, zones.nZones, DIM, METRIC_L2, new Float32Array(0), new Uint32Array(0), 0, 0, 2)
      .map((z) => zones.zoneEntry[z]);
    const pool = beamSearch((v) => l2(query, 0, rows, v * DIM, DIM), adjacency, R, entries, 32, N);
    const found = new Set(pool.ids.slice(0, 10));
    for (let j = 0; j < 10; j++) if (found.has(truth[q * 10 + j])) hits++;
  }
  const recall = hits / (nq * 10);
  assert.ok(recall >= 0.97, `recall@10 ${recall}`);
});

test('nodeZones: the layout zones nearest each node, its own first, empty k-means cells left out', () => {
  // four centroids in k-means numbering; centroid 2 got no rows, so the layout dropped it
  const zones = {
    nZones: 3, order: Uint32Array.from([1, 3, 0, 2]), zoneStart: Uint32Array.from([0, 2, 3, 4]),
  } as unknown as ZoneLayout;
  // rows' nearest centroids (k-means numbering), two choices each: rows 1 and 3 in centroid 3
  // (layout zone 0), row 0 in centroid 0 (zone 1), row 2 in centroid 1 (zone 2)
  const nearest = Uint32Array.from([0, 2, 3, 1, 1, 0, 3, 0]);
  const near = nodeZones(zones, nearest, 2, 4);
  // nodes in layout order: rows 1, 3, 0, 2
  assert.deepEqual(Array.from(near), [0, 2, 0, 1, 1, NO_ZONE, 2, 1]);
  assert.equal(NO_ID, NO_ZONE);
});
