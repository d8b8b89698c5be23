/** Plain-TypeScript twin of assembly/mutate.ts: graph repair around deleted nodes, by the definition. */
import { distance } from './distance.js';
import { robustPrune } from './search.js';

/**
 * For each listed node p (in order): candidates are p's live neighbours and the live neighbours of
 * its deleted neighbours, each once, in the order met; the L nearest (ties: met first) are pruned
 * into p's new row. Rewrites `adjacency` (u32[n * (R + 1)] rows [count, nbrs...]) in place.
 */
export function repairNodes(
  vectors: Float32Array, dim: number, metric: number, adjacency: Uint32Array, R: number, L: number, alpha: number,
  deleted: (node: number) => boolean, nodes: number[],
): void {
  const row = (i: number) => Array.from(adjacency.subarray(i * (R + 1) + 1, i * (R + 1) + 1 + adjacency[i * (R + 1)]));
  for (const p of nodes) {
    const seen = new Set([p]);
    const cands: { id: number; d: number }[] = [];
    const consider = (c: number) => {
      if (seen.has(c)) return;
      seen.add(c);
      cands.push({ id: c, d: distance(vectors, p * dim, vectors, c * dim, dim, metric) });
    };
    for (const nb of row(p)) {
      if (!deleted(nb)) consider(nb);
      else for (const x of row(nb)) if (!deleted(x)) consider(x);
    }
    const best = cands.map((c, i) => ({ ...c, i })).sort((a, b) => a.d - b.d || a.i - b.i).slice(0, L);
    const kept = robustPrune(vectors, dim, metric, best.map((c) => c.id), best.map((c) => c.d), R, alpha);
    adjacency[p * (R + 1)] = kept.length;
    kept.forEach((c, j) => (adjacency[p * (R + 1) + 1 + j] = c));
  }
}
