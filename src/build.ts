/**
 * Building an index: zones (k-means over the rows), PQ codebooks and codes (of the residuals from
 * the zone centroids by default), the graph (src/graph.ts), then the arrays laid out in a fresh,
 * tight arena and installed (src/built.ts). The build works in an arena of its own, refused with
 * OUT_OF_MEMORY before any work when it or the finished index cannot fit (src/budget.ts); nothing
 * of the caller's index changes until the result is installed. Progress by phase, aborts and turns
 * of the event loop at every step (src/pace.ts).
 */
import { Arena, checkArenaBudget } from './memory.js';
import { BUILD_SLICE_ROWS, buildsOnHalfRows, installArenaBytes, workArenaBytes } from './budget.js';
import { createKernels } from './kernels/wasm.js';
import { assignNearestSteps, buildZonesSteps, defaultZoneCount, type ZoneLayout, zoneCentroidsSteps, zonesFromAssignment } from './zones.js';
import type { Device, DeviceUse } from './gpu/batch.js';
import { gpuAssign } from './gpu/assign.js';
import { CANDIDATE_CHUNK, candidateWidth, GpuCandidatesFailed, GpuNeighbours, graphCandidates, nodeZones } from './gpu/neighbours.js';
import { whyRefused } from './gpu/webgpu.js';
import { encodePQSteps, PQ_CENTROIDS, residualRows, type RowSource, residualTerms, trainPQSteps } from './pq.js';
import { Pacer, runPaced, stepProgress, throwIfAborted } from './pace.js';
import { buildGraph, linkCandidates, linkCapacity } from './graph.js';
import { fitsHalf, type IndexMeta } from './persist.js';
import type { InputRows } from './input.js';
import type { IndexArrays } from './layout.js';
import { platform } from './platform.js';
import { DEFAULT_SEARCH, kernelMetric, type ResolvedOptions, type ResolvedSearchOptions, type SearchOptions } from './options.js';
import { buildWorkers, type Built, installBuilt, shapeOf } from './built.js';

export interface BuildOptions {
  /** Caller ids, one per vector, unique uint32 values. Default: 0..n-1. */
  ids?: Uint32Array | ArrayLike<number>;
  /** Progress of the build: phase name and fraction done in [0, 1]. */
  onProgress?: (phase: BuildPhase, fraction: number) => void;
  /**
   * Threads that build the graph (worker threads on the shared memory). Default: the CPUs available
   * (in a browser: 1 unless the page is cross-origin isolated). The index is the same, byte for byte, for any thread count.
   */
  threads?: number;
  /**
   * Stops the build at its next step (within about 50 ms) with ZGQError 'ABORTED'; the index stays
   * as it was. The build also gives the event loop a turn at least every 50 ms.
   */
  signal?: AbortSignal;
  /**
   * Tune the search defaults at the end of the build (see ZGQIndex.tune): the fastest options
   * reaching this recall@10 on a sample of the index's own vectors, chosen by timing them. Without
   * it the defaults are calibrated instead, on recall alone (the same on every run): ef raised from
   * 64 until recall@10 on the sample reaches 0.96 (0.95 for queries from outside), the exact walk or the scan where
   * the PQ walk cannot (above 200,000 vectors the walk that came nearest instead of the scan); search
   * options given to the constructor are kept as they are.
   */
  targetRecall?: number;
  /**
   * Split the index into at least this many shards (each a complete index over nearby vectors,
   * behind a router; see the README), for serving them from separate processes (zgq/cluster).
   * Default 1: one shard unless the index is too large for one WebAssembly memory. At most 256,
   * and at most one per 2 vectors.
   */
  shards?: number;
  /**
   * Where the build's passes over every row run: the zone assignment (every row against every
   * zone centroid) and the graph's candidate neighbours (each node's nearest rows in its nearest
   * zones, which the CPU prunes into the graph instead of searching for them). 'cpu' (default),
   * 'gpu' (WebGPU, a software adapter included) or 'auto' (a hardware GPU, 50,000 rows or more);
   * k-means and PQ run on the CPU. `stats().device` says where it ran, and why not on the GPU.
   */
  device?: Device;
}

export type BuildPhase = 'zones' | 'pq' | 'graph' | 'tune' | 'done';

/** Rows fitsHalf checks between two turns of the event loop (a few milliseconds at 768 dimensions). */
const HALF_CHECK_ROWS = 4096;

/** Sets of at most this many vectors train PQ with fewer Lloyd passes (see build). */
const PQ_SMALL_N = 20000;

/** Default nProbe and scan: one zone in this many, and at least DEFAULT_SEARCH's (16 up to 512 zones). */
const ZONES_PER_PROBE = 32;

/**
 * An index over `x` (n rows, unit length under cosine, read a block at a time, never copied whole
 * outside the arena; `ids` the caller's, one per row) with the
 * index options `o`, and its search defaults: `o.search` with nProbe and scan following the zone
 * count unless the caller fixed them (`fixedSearch`). Emits every phase's progress but 'tune' and
 * 'done' (the caller's: see ZGQIndex.build).
 */
export async function buildIndex(
  x: InputRows, ids: Uint32Array, o: ResolvedOptions, fixedSearch: SearchOptions, options: BuildOptions,
): Promise<{ built: Built; search: ResolvedSearchOptions; device: DeviceUse | null }> {
  const { dim, metric } = o;
  const n = ids.length;
  const pacer = new Pacer(options.signal, 'build');
  const progress = options.onProgress ?? (() => {});
  const m = o.pqSubspaces;
  const nZones = Math.min(o.zones ?? defaultZoneCount(n), n);
  // binary16 only where every vector fits it (see fitsHalf): known before the budget is checked,
  // and checked in slices that leave the event loop its turns
  let half = o.storage === 'float16';
  for (let r = 0; half && r < n; r += HALF_CHECK_ROWS) {
    const to = Math.min(n, r + HALF_CHECK_ROWS);
    if (!x.picked) half = fitsHalf(x.data.subarray(r * dim, to * dim), dim);
    else for (let i = r; half && i < to; i++) half = fitsHalf(x.row(i), dim);
    await pacer.step();
  }
  const lanes = platform.threads(options.threads);
  const what = `building an index of ${n} vectors of dim ${dim}`;
  const candidates = (options.device ?? 'cpu') === 'cpu' ? undefined : { width: candidateWidth(o.degree), chunk: CANDIDATE_CHUNK };
  const work = { n, dim, m, degree: o.degree, efConstruction: o.efConstruction, nZones, lanes, half, linkCapacity: linkCapacity(o.degree), candidates };
  checkArenaBudget(workArenaBytes(work), what);
  checkArenaBudget(installArenaBytes(shapeOf(n, dim, m, o, nZones, half)), what);

  // the build works in an arena of its own; the finished arrays move to a fresh, tight one
  const kernels = createKernels(new Arena());
  const { arena } = kernels;
  const metricCode = kernelMetric(metric);

  // graph workers (lane 0 is this thread): started now, so they are up when the graph needs them
  const workers = await buildWorkers(kernels, options.threads);

  // progress within the zones and PQ phases counts their steps (k-means++ centres in sixteens,
  // Lloyd iterations, assignment chunks), against a count known in advance up to early stops
  const chunks = Math.ceil(n / Math.max(1, Math.floor((4 << 20) / (dim * 4))));
  progress('zones', 0);
  const zoneSteps = Math.floor(nZones / 16) + 20 + chunks;
  const zoneProgress = stepProgress((f) => progress('zones', f), zoneSteps);
  let zones: ZoneLayout;
  let device: DeviceUse | null = null;
  // on the GPU: its device and each node's nearest zones, where its graph candidates come from
  let onGpu: { device: GPUDevice; near: Uint32Array; choices: number } | null = null;
  if ((options.device ?? 'cpu') === 'cpu') {
    zones = await runPaced(buildZonesSteps(kernels, x, n, dim, nZones, o.seed), pacer, zoneProgress);
  } else {
    // k-means on the CPU (a sample, or mini-batches); the pass over every row on the GPU
    const raw = await runPaced(zoneCentroidsSteps(kernels, x, n, dim, nZones, o.seed), pacer, zoneProgress);
    const k = raw.length / dim;
    const choices = Math.min(graphCandidates.zones, k);
    const gpu = await gpuAssign(x, n, dim, raw, k, choices, options.device as Exclude<Device, 'cpu'>, pacer);
    device = { op: 'build', ran: 'nearest' in gpu ? 'gpu' : 'cpu', adapter: gpu.adapter, reason: 'reason' in gpu ? gpu.reason : null };
    if ('nearest' in gpu) {
      const first = (a: Uint32Array | Float32Array) => a.filter((_, i) => i % choices === 0);
      zones = zonesFromAssignment(kernels, n, dim, raw, first(gpu.nearest) as Uint32Array, first(gpu.dist) as Float32Array, o.seed);
      onGpu = { device: gpu.device, near: nodeZones(zones, gpu.nearest, choices, k), choices };
    } else {
      const assigned = await runPaced(assignNearestSteps(kernels, x, n, dim, raw, k), pacer, zoneProgress);
      zones = zonesFromAssignment(kernels, n, dim, raw, assigned.nearest, assigned.dist, o.seed);
    }
  }
  progress('zones', 1);

  // the rows in internal (zone-contiguous) order. A large build encodes binary16 rows a slice at a
  // time through a float32 buffer, so its arena never holds them as float32, and links the graph on
  // the rows searches re-rank, as re-layouts do (buildsOnHalfRows); zone tables for the graph build
  const halfRows = buildsOnHalfRows(n, dim, half);
  const vectorsPtr = arena.alloc(n * dim * (halfRows ? 2 : 4));
  const slicePtr = halfRows ? arena.alloc(Math.min(n, BUILD_SLICE_ROWS) * dim * 4) : 0;
  for (let from = 0; from < n; from += BUILD_SLICE_ROWS) {
    const to = Math.min(n, from + BUILD_SLICE_ROWS);
    const v = arena.f32(halfRows ? slicePtr : vectorsPtr + from * dim * 4, (to - from) * dim);
    for (let i = from; i < to; i++) v.set(x.row(zones.order[i]), (i - from) * dim);
    if (halfRows) kernels.k.encodeHalf(slicePtr, vectorsPtr + from * dim * 2, (to - from) * dim);
    await pacer.step();
  }
  const centroidsPtr = arena.allocFrom(zones.centroids);
  const groupCentroidsPtr = zones.nGroups ? arena.allocFrom(zones.groupCentroids) : 0;
  const groupStartPtr = zones.nGroups ? arena.allocFrom(zones.groupStart) : 0;

  progress('pq', 0);
  const zoneOf = new Uint32Array(n);
  for (let z = 0; z < zones.nZones; z++) zoneOf.fill(z, zones.zoneStart[z], zones.zoneStart[z + 1]);
  // what PQ quantizes, row by row from the caller's float32 rows in internal order: no copy of them all
  const rowAt = (i: number) => x.row(zones.order[i]);
  const pqInput: RowSource = o.residual ? residualRows(rowAt, zoneOf, zones.centroids, dim) : (i, into) => into.set(rowAt(i));
  // PQ training is a fixed cost (at most 10000 rows): on small sets it outweighs the graph, so
  // fewer Lloyd passes there; k-means++ on 8 points per centroid (BENCHMARKS.md "Performance work")
  const pqIterations = n <= PQ_SMALL_N ? 4 : 10;
  const pqStep = stepProgress((f) => progress('pq', f), m * (Math.floor(PQ_CENTROIDS / 16) + pqIterations + chunks));
  const codebooks = await runPaced(trainPQSteps(kernels, pqInput, n, dim, m, { seed: o.seed + 1, iterations: pqIterations, seedPointsPerCentroid: 8 }), pacer, pqStep);
  const codes = new Uint8Array(n * m);
  await runPaced(encodePQSteps(kernels, pqInput, n, dim, m, codebooks, codes), pacer, pqStep);
  const vecTerm = o.residual ? residualTerms(codebooks, codes, zoneOf, zones.centroids, n, dim, m, metricCode) : new Float32Array(0);
  progress('pq', 1);

  progress('graph', 0);
  const graphInput = { vectorsPtr, n, dim, metric: metricCode, zones, centroidsPtr, groupCentroidsPtr, groupStartPtr, half: halfRows };
  const graphOptions = {
    degree: o.degree, efConstruction: o.efConstruction, alpha: o.alpha, buildProbe: 2, shape: o.graph, seed: o.seed + 2,
    onProgress: (done: number, total: number) => {
      throwIfAborted(options.signal, 'build');
      progress('graph', done / total);
    },
  };
  let adjacencyPtr = 0;
  if (onGpu && o.graph !== 'per-zone') {
    // each node's nearest rows in its nearest zones from the GPU, pruned into the graph here
    const rows = halfRows ? arena.u16(vectorsPtr, n * dim) : arena.f32(vectorsPtr, n * dim);
    const mark = arena.mark();
    let source: GpuNeighbours | null = null;
    try {
      source = await GpuNeighbours.open(onGpu.device, rows, x, zones, onGpu.near, onGpu.choices, metricCode, candidateWidth(o.degree), () => pacer.step());
      adjacencyPtr = await linkCandidates(kernels, graphInput, graphOptions, source, workers);
    } catch (err) {
      if (!(err instanceof GpuCandidatesFailed)) throw err; // ABORTED, or a fault of the CPU's own
      arena.release(mark);
      device = { op: 'build', ran: 'cpu', adapter: device!.adapter, reason: `the zones were assigned on the GPU, the graph on the CPU: ${await whyRefused(onGpu.device, err.cause, 'the graph')}` };
    } finally {
      source?.destroy();
    }
  } else if (onGpu) {
    device = { ...device!, reason: 'per-zone graphs are linked on the CPU' };
  }
  if (!adjacencyPtr) adjacencyPtr = await buildGraph(kernels, graphInput, graphOptions, workers);
  await pacer.step();

  const storage = half ? 'float16' : 'float32';
  // binary16 rows of a small build, converted in place a slice at a time, first to last: each write
  // lands on float32 bytes already read (no second copy of the rows)
  for (let from = 0; half && !halfRows && from < n; from += BUILD_SLICE_ROWS) {
    const to = Math.min(n, from + BUILD_SLICE_ROWS);
    kernels.k.encodeHalf(vectorsPtr + from * dim * 4, vectorsPtr + from * dim * 2, (to - from) * dim);
    await pacer.step();
  }
  const storedRows = half ? arena.u16(vectorsPtr, n * dim) : arena.f32(vectorsPtr, n * dim);
  const internalIds = new Uint32Array(n);
  for (let i = 0; i < n; i++) internalIds[i] = ids[zones.order[i]];
  // far queries spread their neighbours over more zones when zones are many
  const zonesProbed = Math.max(DEFAULT_SEARCH.nProbe, Math.ceil(zones.nZones / ZONES_PER_PROBE));
  const search = {
    ...o.search,
    nProbe: fixedSearch.nProbe ?? zonesProbed,
    scan: fixedSearch.scan ?? zonesProbed,
  };
  const meta: IndexMeta = {
    kind: 'zgq-index', options: { ...o, search }, n, dim, m, degree: o.degree, nZones: zones.nZones, nGroups: zones.nGroups,
    residual: o.residual, storage, zoned: n,
  };
  const arrays: IndexArrays = {
    vectors: storedRows,
    codes,
    adjacency: arena.u32(adjacencyPtr, n * (o.degree + 1)),
    codebooks,
    centroids: zones.centroids,
    zoneStart: zones.zoneStart,
    zoneEntry: zones.zoneEntry,
    groupCentroids: zones.groupCentroids,
    groupStart: zones.groupStart,
    vecTerm,
    ids: internalIds,
    deleted: null,
    tailZones: new Uint32Array(0),
  };
  // rows stored as laid out (float32, or binary16 linked as such): the build's arena becomes the
  // index's, with no second copy of it; a small build's binary16 rows fill half their float32 region
  // and move to a tight arena instead
  const inPlace = halfRows || !half ? { kernels, vectorsPtr, adjacencyPtr } : undefined;
  return { built: installBuilt(meta, arrays, n, null, inPlace), search, device };
}
