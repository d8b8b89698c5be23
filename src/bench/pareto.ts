/**
 * Recall/QPS trade-off curves: Pareto frontiers, best QPS at a recall target, and the ratios of
 * ZGQ to the reference libraries that the summary reports.
 */
import type { LibraryId, TargetBest, TargetRow } from './types.js';

/** A measured configuration as far as the trade-off is concerned. */
export interface CurvePoint {
  recall: number;
  qps: number;
}

/**
 * The points no other point beats on both axes (recall >= and QPS >=, one of them strictly),
 * sorted by recall ascending. Exact duplicates keep one representative.
 */
export function paretoFrontier<T extends CurvePoint>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => b.recall - a.recall || b.qps - a.qps);
  const out: T[] = [];
  let bestQps = -Infinity;
  for (const p of sorted) {
    if (p.qps > bestQps) {
      out.push(p);
      bestQps = p.qps;
    }
  }
  return out.reverse();
}

/**
 * Frontier layers peeled one after the other: layer 0 is the frontier, layer 1 the frontier of
 * what remains, and so on. Used to keep near-optimal configurations when a pilot is noisy.
 */
export function paretoLayers<T extends CurvePoint>(points: readonly T[], layers: number): T[][] {
  let rest = [...points];
  const out: T[][] = [];
  for (let l = 0; l < layers && rest.length > 0; l++) {
    const front = paretoFrontier(rest);
    out.push(front);
    const taken = new Set(front);
    rest = rest.filter((p) => !taken.has(p));
  }
  return out;
}

/** The configuration with the highest QPS among those with recall >= target, or undefined. */
export function bestAtTarget<T extends CurvePoint>(points: readonly T[], target: number): T | undefined {
  let best: T | undefined;
  for (const p of points) {
    if (p.recall >= target - 1e-12 && (!best || p.qps > best.qps)) best = p;
  }
  return best;
}

/** What the summary needs of a result. */
export interface SummaryPoint extends CurvePoint {
  series: string;
  library: LibraryId;
  params: Record<string, number>;
}

/** Series whose best QPS ZGQ is divided by in the summary. */
export const REFERENCE_SERIES = { 'hnswlib-node': 'hnswlib-node', usearch: 'usearch' } as const;
/** Series name of ZGQ's results. */
export const ZGQ_SERIES = 'ZGQ';

/**
 * For each target: each series' best QPS at recall >= target (null when never reached), and ZGQ's
 * best QPS over hnswlib-node's and usearch's (null when either side did not reach the target).
 * Series appear in first-seen order.
 */
export function targetSummary(points: readonly SummaryPoint[], targets: readonly number[]): TargetRow[] {
  const series: { series: string; library: LibraryId }[] = [];
  const bySeries = new Map<string, SummaryPoint[]>();
  for (const p of points) {
    let list = bySeries.get(p.series);
    if (!list) {
      bySeries.set(p.series, (list = []));
      series.push({ series: p.series, library: p.library });
    }
    list.push(p);
  }
  return targets.map((target) => {
    const best: TargetBest[] = series.map(({ series: s, library }) => {
      const list = bySeries.get(s)!;
      const b = bestAtTarget(list, target);
      const maxRecall = Math.max(...list.map((p) => p.recall));
      return { series: s, library, qps: b ? b.qps : null, recall: b ? b.recall : null, params: b ? { ...b.params } : null, maxRecall };
    });
    const qpsOf = (s: string) => best.find((b) => b.series === s)?.qps ?? null;
    const zgq = qpsOf(ZGQ_SERIES);
    const ratio = (ref: string) => {
      const r = qpsOf(ref);
      return zgq !== null && r !== null && r > 0 ? zgq / r : null;
    };
    return {
      target,
      best,
      ratios: { 'hnswlib-node': ratio(REFERENCE_SERIES['hnswlib-node']), usearch: ratio(REFERENCE_SERIES.usearch) },
    };
  });
}
