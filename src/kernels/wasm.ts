/**
 * The only file that touches WebAssembly: compiles the kernel module once per process and binds an
 * instance to an Arena's memory. Every kernel argument is a byte offset into that memory or a
 * number; see assembly/ for each kernel's contract and src/kernels/reference/ for its plain twin.
 */
import { WASM_BASE64 } from './wasm-binary.js';
import { Arena } from '../memory.js';
import { ZGQError } from '../errors.js';

/** Metric codes shared with the kernels. */
export const METRIC_L2 = 0;
export const METRIC_IP = 1;
/** PQ lookup-table modes (assembly/pq.ts). */
export const LUT_L2 = 0;
export const LUT_IP = 1;
export const LUT_RESIDUAL_L2 = 2;

type Ptr = number;

/** Typed signatures of the kernel exports (assembly/index.ts). */
export interface KernelExports {
  distanceBlock(q: Ptr, rows: Ptr, n: number, dim: number, metric: number, out: Ptr): void;
  distanceByIds(q: Ptr, rows: Ptr, ids: Ptr, count: number, dim: number, metric: number, out: Ptr): void;
  nearestRows(x: Ptr, n: number, centroids: Ptr, k: number, dim: number, metric: number, outNearest: Ptr, outDist: Ptr): void;
  nearestRowsT(
    x: Ptr, n: number, xStride: number, dim: number, centroidsT: Ptr, norms: Ptr, k: number,
    outNearest: Ptr, outDist: Ptr,
  ): void;
  seedUpdate(q: Ptr, rows: Ptr, n: number, dim: number, minDist: Ptr): number;
  seedPick(minDist: Ptr, n: number, target: number): number;
  accumulateRows(x: Ptr, n: number, xStride: number, dim: number, nearest: Ptr, sums: Ptr, counts: Ptr): void;
  pqLut(q: Ptr, codebooksT: Ptr, norms: Ptr, dim: number, m: number, mode: number, out: Ptr, codebooksQ: Ptr, codebookQScale: number, queryPairs: Ptr): void;
  adcByIds(lut: Ptr, codes: Ptr, m: number, ids: Ptr, count: number, out: Ptr): void;
  selectZones(
    q: Ptr, centroids: Ptr, nZones: number, dim: number, metric: number,
    groupCentroids: Ptr, groupStart: Ptr, nGroups: number, groupProbe: number,
    nProbe: number, outZones: Ptr, outDist: Ptr, scratch: Ptr,
    zoneTerm: Ptr, zoneTag: Ptr, epoch: number,
  ): number;
  searchPq(
    lut: Ptr, codes: Ptr, m: number, adjacency: Ptr, R: number,
    entries: Ptr, nEntries: number, L: number, visited: Ptr, epoch: number,
    outDist: Ptr, outIds: Ptr,
    zoneOf: Ptr, zoneTerm: Ptr, zoneTag: Ptr, vecTerm: Ptr, q: Ptr, centroids: Ptr, dim: number, metric: number,
    scanZones: Ptr, nScan: number, zoneStart: Ptr, allow: Ptr, neighbours: Ptr,
  ): number;
  searchQuery(ctx: Ptr, k: number, L: number, nProbe: number, groupProbe: number, scan: number, scanRatio: number, rerankCount: number): number;
  searchRange(
    ctx: Ptr, queries: Ptr, from: number, to: number,
    k: number, L: number, nProbe: number, groupProbe: number, scan: number, scanRatio: number, rerankCount: number,
    outIds: Ptr, outDist: Ptr,
  ): void;
  searchGrouped(
    ctx: Ptr, scratch: Ptr, scratchBytes: number, maxQueries: number, rounded: Ptr, units: Ptr, queries: Ptr, from: number, to: number,
    k: number, L: number, nProbe: number, groupProbe: number, scan: number, scanRatio: number,
    outIds: Ptr, outDist: Ptr,
  ): void;
  groupedScratchBytes(dim: number, nZones: number, maxQueries: number, nProbe: number, L: number): number;
  roundRowsInto(vectors: Ptr, from: number, to: number, dim: number, rounded: Ptr, units: Ptr): void;
  roundedRowBytes(dim: number): number;
  searchExact(
    q: Ptr, vectors: Ptr, dim: number, metric: number, adjacency: Ptr, R: number,
    entries: Ptr, nEntries: number, L: number, visited: Ptr, epoch: number, outDist: Ptr, outIds: Ptr,
    lo: number, hi: number, half: number, neighbours: Ptr,
  ): number;
  rerank(
    q: Ptr, vectors: Ptr, dim: number, metric: number, halfStorage: number,
    candIds: Ptr, available: number, count: number, k: number, outIds: Ptr, outDist: Ptr, allow: Ptr,
  ): number;
  searchListed(ctx: Ptr, ids: Ptr, count: number, k: number): number;
  searchCandidates(ctx: Ptr, L: number, nProbe: number, groupProbe: number, scan: number, scanRatio: number, rerankCount: number): number;
  rankStaged(ctx: Ptr, rows: Ptr, ids: Ptr, count: number, k: number, size: number): number;
  searchAll(ctx: Ptr, n: number, k: number): number;
  fastScanTop(lut: Ptr, codes: Ptr, blocks: number, pairs: number, n: number, count: number, ids: Ptr, sums: Ptr, capacity: number, lanes: Ptr): number;
  stripExpanded(ids: Ptr, count: number): void;
  encodeHalf(src: Ptr, dst: Ptr, count: number): void;
  decodeHalfBlock(src: Ptr, dst: Ptr, count: number): void;
  halfRowNorms(vectors: Ptr, from: number, to: number, dim: number, out: Ptr): void;
  walkExact(
    q: Ptr, qScaled: Ptr, rowNorms: Ptr, vectors: Ptr, dim: number, metric: number, half: number,
    adjacency: Ptr, R: number, entries: Ptr, nEntries: number, L: number, visited: Ptr, epoch: number,
    outDist: Ptr, outIds: Ptr, scanZones: Ptr, nScan: number, zoneStart: Ptr, allow: Ptr, neighbours: Ptr,
  ): number;
  repairNodes(
    vectors: Ptr, dim: number, metric: number, adjacency: Ptr, R: number, L: number, alpha: number,
    deleted: Ptr, nodes: Ptr, count: number, n: number, visited: Ptr, scratch: Ptr, half: number,
  ): void;
  robustPrune(
    vectors: Ptr, dim: number, metric: number, candIds: Ptr, candDist: Ptr, count: number, R: number, alpha: number, outIds: Ptr,
    half: number, rowScratch: Ptr,
  ): number;
  linkOut(
    node: number, vectors: Ptr, dim: number, metric: number, adjacency: Ptr, R: number, capacity: number,
    entries: Ptr, nEntries: number, L: number, alpha: number, visited: Ptr, epoch: number, scratch: Ptr,
    lo: number, hi: number, half: number, deleted: Ptr,
  ): void;
  linkBack(
    node: number, vectors: Ptr, dim: number, metric: number, adjacency: Ptr, R: number, capacity: number, L: number, alpha: number,
    scratch: Ptr, lane: number, lanes: number, half: number,
  ): void;
  /** Bytes of the context blocks the kernels read (checked against src/search.ts CTX and src/graph.ts BCTX by a test). */
  readonly SEARCH_CONTEXT_BYTES: WebAssembly.Global;
  readonly BUILD_CONTEXT_BYTES: WebAssembly.Global;
  buildOut(ctx: Ptr, from: number, to: number): void;
  buildBack(ctx: Ptr, from: number, to: number, lane: number, lanes: number): void;
  trimLists(ctx: Ptr, from: number, to: number): void;
  pruneCandidates(ctx: Ptr, from: number, to: number): void;
  reverseLinks(ctx: Ptr, from: number, to: number, lane: number, lanes: number): void;
  narrowRows(adjacency: Ptr, from: number, to: number, fromCapacity: number, toCapacity: number): void;
}

let compiled: WebAssembly.Module | undefined;

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Smallest modules using each feature the kernels need (as in GoogleChromeLabs/wasm-feature-detect):
 * one v128 instruction; a shared memory with one atomic load.
 */
const FEATURE_PROBES: Array<[string, number[]]> = [
  ['WebAssembly SIMD (128-bit)', [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]],
  ['WebAssembly threads (shared memory)', [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11]],
];

/** Names of the WebAssembly features the kernels need that `validate` (the runtime's by default) lacks. */
export function missingWasmFeatures(validate?: (bytes: Uint8Array) => boolean): string[] {
  if (!validate && typeof WebAssembly === 'undefined') return ['WebAssembly'];
  const check = validate ?? ((bytes: Uint8Array) => WebAssembly.validate(bytes as BufferSource));
  return FEATURE_PROBES.filter(([, bytes]) => !check(new Uint8Array(bytes))).map(([name]) => name);
}

/** The compiled kernel module (compiled once; can be posted to workers). */
export function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    try {
      compiled = new WebAssembly.Module(decodeBase64(WASM_BASE64) as BufferSource);
    } catch (cause) {
      const missing = missingWasmFeatures();
      throw new ZGQError(
        'UNSUPPORTED_PLATFORM',
        missing.length > 0
          ? `this runtime lacks ${missing.join(' and ')}, which the ZGQ kernels need`
          : `the ZGQ kernels need WebAssembly with SIMD (128-bit) and threads (shared memory); this runtime could not compile them (${String(cause)})`,
        { cause },
      );
    }
  }
  return compiled;
}

/** Kernels bound to one arena: the exports plus the arena they operate on. */
export interface Kernels {
  readonly arena: Arena;
  readonly k: KernelExports;
}

/** Instantiate the kernels on `arena`'s memory (a fresh arena when omitted). */
export function createKernels(arena: Arena = new Arena()): Kernels {
  const instance = new WebAssembly.Instance(kernelModule(), { env: { memory: arena.memory } });
  return { arena, k: instance.exports as unknown as KernelExports };
}
