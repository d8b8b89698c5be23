// The paper reproduction's shared pieces (bench/paper.ts): its data recipes with exact truth, and
// timing passes interleaved across the sides of a comparison (medians, after a warm-up each).
import { clusteredGaussian, randomSphere, type Dataset } from '../../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../../src/data/groundtruth.js';
import { median } from '../../src/bench/metrics.js';
import { toArrays } from '../../src/bench/peers/hnswlib.js';
import { Rng } from '../../src/random.js';

/** Neighbours per query, as in every claim (recall@10). */
export const K = 10;
/** The prototype's seed. */
export const SEED = 42;

export type Recipe = 'clustered' | 'sphere' | 'randn';

export interface PaperData {
  /** e.g. "clustered 100K x 128, 500 queries". */
  name: string;
  ds: Dataset;
  /** Exact neighbours, K per query. */
  truth: Uint32Array;
  /** The queries as number[] rows (hnswlib-node's only input), made once. */
  queryRows: number[][];
}

/** 10K-style counts: 10000 -> "10K". */
export function count(n: number): string {
  return n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n % 1000 === 0 ? `${n / 1000}K` : String(n);
}

/**
 * A data recipe of the paper (../shared/PAPER-CLAIMS.md), 128 dimensions: 'clustered' (n / 1000
 * centres, spread 0.3, 30 % of the queries from N(0, I)), 'sphere' (uniform on the unit sphere),
 * 'randn' (N(0, I) rows, not normalised). Exact truth by brute force.
 */
export function paperData(recipe: Recipe, n: number, nQueries: number, dim = 128): PaperData {
  let ds: Dataset;
  if (recipe === 'clustered') ds = clusteredGaussian({ n, nQueries, dim, seed: SEED, outlierFraction: 0.3 });
  else if (recipe === 'sphere') ds = randomSphere({ n, nQueries, dim, seed: SEED });
  else {
    const rng = new Rng(SEED);
    const draw = (rows: number) => Float32Array.from({ length: rows * dim }, () => rng.normal());
    ds = { name: `randn(n=${n},q=${nQueries},d=${dim})`, dim, base: draw(n), queries: draw(nQueries), nBase: n, nQueries };
  }
  const truth = Uint32Array.from(bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, dim, K, 'l2').ids);
  return { name: `${recipe} ${count(n)} x ${dim}, ${nQueries} queries`, ds, truth, queryRows: toArrays(ds.queries, 0, nQueries, dim) };
}

/** The first nq queries of `data` (their truth with them). */
export function firstQueries(data: PaperData, nq: number): PaperData {
  const { ds } = data;
  return {
    name: data.name.replace(/\d+ queries$/, `${nq} queries`),
    ds: { ...ds, queries: ds.queries.subarray(0, nq * ds.dim), nQueries: nq },
    truth: data.truth.subarray(0, nq * K),
    queryRows: data.queryRows.slice(0, nq),
  };
}

export function recallOf(data: PaperData, ids: Uint32Array): number {
  return recallAtK(ids, data.truth, data.ds.nQueries, K);
}

/** One side of a timed comparison: a pass over every query that writes their ids. */
export interface Side {
  label: string;
  /** Seconds of one pass (every query once). */
  pass(out: Uint32Array): number | Promise<number>;
}

/** What a side measured: per query, over the median pass. */
export interface Timing {
  label: string;
  recall: number;
  msPerQuery: number;
  qps: number;
}

/**
 * Time the sides side by side: `warmups` untimed passes each, then `passes` rounds in which every
 * side runs once (the order alternating), so a noisy stretch of the machine hits them alike.
 * Returns each side's median pass and the recall of its last.
 */
export async function interleave(data: PaperData, sides: Side[], passes: number, warmups = 1): Promise<Timing[]> {
  const nq = data.ds.nQueries;
  const outs = sides.map(() => new Uint32Array(nq * K));
  const seconds: number[][] = sides.map(() => []);
  for (let w = 0; w < warmups; w++) for (let s = 0; s < sides.length; s++) await sides[s].pass(outs[s]);
  for (let p = 0; p < passes; p++) {
    const order = sides.map((_, i) => i);
    if (p % 2) order.reverse();
    for (const s of order) seconds[s].push(await sides[s].pass(outs[s]));
  }
  return sides.map((side, s) => {
    const sec = median(seconds[s]);
    return { label: side.label, recall: recallOf(data, outs[s]), msPerQuery: (sec * 1000) / nq, qps: nq / sec };
  });
}

/** Seconds since `start` (a performance.now() reading). */
export function since(start: number): number {
  return (performance.now() - start) / 1000;
}
