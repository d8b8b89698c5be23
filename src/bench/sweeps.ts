/**
 * The knob values each library is swept over, for a full run and for `--quick`.
 */
import type { SweepPoint } from './peers/types.js';

/** Sweep values and timing shape of a run. */
export interface SweepPlan {
  /** hnswlib-node `ef`, usearch `expansion_search`, FAISS HNSW `efSearch`. */
  hnswEf: number[];
  /** FAISS IVF `nprobe` (values above nlist are dropped). */
  nprobe: number[];
  /** ZGQ grid; see {@link zgqCandidates}. */
  zgq: { ef: number[]; nProbe: number[]; rerank: number[] };
  /** Queries of the ZGQ pilot (the first ones). */
  pilotQueries: number;
  /** Pareto layers of the pilot kept for timing, and a cap on how many points that is. */
  pilotLayers: number;
  maxPilotKeep: number;
  /** A timed pass runs at least this many queries (a small query set is repeated). */
  minQueriesPerPass: number;
  /**
   * The same for a batch-mode pass: more, so that waking a library's threads after the other
   * libraries' cells is a small part of it, as in a run of batches.
   */
  minBatchQueriesPerPass: number;
}

/** Sweep plan of a full run, or of `--quick` (a smoke check that finishes in about a minute). */
export function sweepPlan(quick: boolean): SweepPlan {
  if (quick) {
    return {
      hnswEf: [10, 20, 40, 80, 160, 320, 640],
      nprobe: [1, 2, 4, 8, 16, 32, 64],
      zgq: { ef: [16, 32, 64, 128, 256, 512, 1024], nProbe: [1, 4, 16], rerank: [2, 8, 32] },
      pilotQueries: 100,
      pilotLayers: 1,
      maxPilotKeep: 10,
      minQueriesPerPass: 500,
      minBatchQueriesPerPass: 1000,
    };
  }
  return {
    // dense at the bottom: on 10K sets the 0.95 target falls between ef 10 and 16 (hnswlib-node
    // reaches 0.950 on siftsmall at ef 12), and a coarse step there would overstate the ratio;
    // dense at the top too: hnswlib needs ef ~1000-2000 for 0.99 on the paper recipe at 100K,
    // and a coarse step there would understate it at the target; beyond 2048 for 1M, where the
    // graph libraries stop short of 0.99 at 2048 (the sweep ends early once recall saturates)
    hnswEf: [10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 96, 128, 192, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1200, 1400, 1600, 2048, 3072, 4096],
    nprobe: [1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 96, 128],
    zgq: {
      // the same low-end steps as the graph peers
      ef: [10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048],
      // 64: at 1M (about 1,000 zones) far queries need that many zones for 0.99
      nProbe: [1, 2, 4, 8, 16, 32, 64],
      rerank: [2, 4, 8, 16, 32],
    },
    pilotQueries: 200,
    pilotLayers: 2,
    maxPilotKeep: 24,
    minQueriesPerPass: 1000,
    minBatchQueriesPerPass: 5000,
  };
}

/** Zone scans of the grid's wide variant: every selected zone within this ratio of the nearest's distance. */
export const WIDE_SCAN_RATIO = 2;
/** The fast scan's re-rank factors swept (k * rerank candidates re-ranked). */
export const FAST_RERANKS = [2, 4, 8, 16, 32, 64, 128];

/**
 * ZGQ's candidate grid: every (nProbe, rerank, ef) of PQ traversal, leaving out rerank values whose
 * k * rerank exceeds 2 * ef (the re-rank is capped by the pool of ef candidates, so those repeat a
 * smaller rerank), and every (nProbe, ef) of traversal 'exact' (params `exact: 1`, no rerank) three
 * ways: with the index's zone scans; without them (`scan: 0`: on real data whose queries lie near
 * it, such as SIFT, the walk alone reaches the same recall with fewer distances); and with wide
 * ones (`scan: nProbe`, `scanRatio`: {@link WIDE_SCAN_RATIO}, from nProbe 2: a query far from all
 * data, whose neighbours spread over many zones of similar distance, reaches 0.99 at 1M this way).
 * And the 'fastscan' traversal over FAST_RERANKS (`fastScan: 1`) and the 'scan' traversal (`fullScan: 1`). Grouped by (nProbe, rerank) or (nProbe, exact, scan)
 * with ef rising, for the pilot's early stop.
 */
export function zgqCandidates(plan: SweepPlan, k: number): SweepPoint[] {
  const out: SweepPoint[] = [];
  for (const nProbe of plan.zgq.nProbe) {
    for (const rerank of plan.zgq.rerank) {
      for (const ef of plan.zgq.ef) {
        if (ef < k || k * rerank > 2 * ef) continue;
        out.push({ params: { ef, nProbe, rerank }, group: `nProbe=${nProbe},rerank=${rerank}` });
      }
    }
    for (const ef of plan.zgq.ef) {
      if (ef >= k) out.push({ params: { ef, nProbe, exact: 1 }, group: `nProbe=${nProbe},exact` });
    }
    for (const ef of plan.zgq.ef) {
      if (ef >= k) out.push({ params: { ef, nProbe, exact: 1, scan: 0 }, group: `nProbe=${nProbe},exact,scan=0` });
    }
    if (nProbe < 2) continue;
    for (const ef of plan.zgq.ef) {
      if (ef >= k) out.push({ params: { ef, nProbe, exact: 1, scan: nProbe, scanRatio: WIDE_SCAN_RATIO }, group: `nProbe=${nProbe},exact,wide` });
    }
  }
  // traversal 'fastscan' over its re-rank depth, and 'scan': every stored vector, no walk (the
  // fastest ways to high recall on data without structure)
  for (const rerank of FAST_RERANKS) out.push({ params: { fastScan: 1, rerank }, group: 'fastscan' });
  out.push({ params: { fullScan: 1 }, group: 'scan' });
  return out;
}

/** Zone scans of ZGQ's batch candidates: every selected zone (a ratio no distance reaches). */
export const ALL_SCAN_RATIO = 1e9;

/** nProbe values of ZGQ's batch candidates besides the grid's: zone scans step in finer counts than walks. */
const BATCH_EXTRA_PROBES = [3, 5, 6, 10, 12, 24];

/**
 * ZGQ's batch-mode candidates beside its single-query ones: the exact walk scanning every selected
 * zone, at the grid's nProbe values from 2 (and a few between them) and a short walk (ef 10 to 16).
 * One query at a time such scans cost more than a longer walk; in a batch they are grouped by zone
 * (src/batch.ts) and cost a fraction of a distance per row.
 */
export function zgqBatchCandidates(plan: SweepPlan, k: number): SweepPoint[] {
  const out: SweepPoint[] = [];
  const probes = [...new Set([...plan.zgq.nProbe, ...BATCH_EXTRA_PROBES.filter((p) => p <= Math.max(...plan.zgq.nProbe))])].sort((a, b) => a - b);
  for (const nProbe of probes) {
    if (nProbe < 2) continue;
    for (const ef of [10, 12, 16]) {
      if (ef >= k) out.push({ params: { ef, nProbe, exact: 1, scan: nProbe, scanRatio: ALL_SCAN_RATIO }, group: `nProbe=${nProbe},exact,all` });
    }
  }
  return out;
}

/** The IVF probe sweep for an index of `nlist` lists. */
export function nprobeSweep(plan: SweepPlan, nlist: number): number[] {
  return plan.nprobe.filter((v) => v <= nlist);
}

/** nlist = round(√N), the usual IVF choice and what PEERS.md measured. */
export function ivfLists(nBase: number): number {
  return Math.max(1, Math.round(Math.sqrt(nBase)));
}

/** Recall past which a sweep's further (costlier) values only add tail points. */
export const SWEEP_SATURATED = 0.999;

/**
 * Whether a 1-D sweep, measured in order of rising cost, can stop: one value has been measured
 * past the first to reach {@link SWEEP_SATURATED}, or recall has reached 0.95 and stopped moving
 * (the last three values within 0.0005: IVF-PQ's ceiling, for instance). Later values could only
 * be slower at the same recall, so they cannot change the frontier or the summary.
 */
export function sweepExhausted(recalls: readonly number[]): boolean {
  const first = recalls.findIndex((r) => r >= SWEEP_SATURATED);
  if (first >= 0 && recalls.length > first + 1) return true;
  const n = recalls.length;
  if (n >= 3 && recalls[n - 1] >= 0.95) {
    const last = recalls.slice(n - 3);
    return Math.max(...last) - Math.min(...last) <= 0.0005;
  }
  return false;
}
