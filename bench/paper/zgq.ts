// ZGQ's side of the paper reproduction: built with given options, searched one query per call or
// as one batch, and the smallest ef of a ladder that reaches a recall (for comparisons at equal
// recall rather than at equal knobs, which mean different things in different libraries).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZGQIndex, type SearchOptions, type ZGQOptions } from '../../src/index.js';
import { K, recallOf, since, type PaperData, type Side } from './measure.js';

/** The ef values tried when matching a recall. */
export const EF_LADDER = [10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024];

export interface BuiltZgq {
  index: ZGQIndex;
  options: Partial<ZGQOptions>;
  buildSeconds: number;
  /** Bytes of its saved file. */
  fileBytes: number;
  /** stats().memory.total less the per-thread search scratch. */
  memoryBytes: number;
  /** The traversal its build calibrated its search defaults to ('pq' or 'exact'; see README). */
  traversal: string;
}

export async function buildZgq(data: PaperData, options: Partial<ZGQOptions>, threads: number): Promise<BuiltZgq> {
  const index = new ZGQIndex({ dim: data.ds.dim, seed: 42, ...options });
  const start = performance.now();
  await index.build(data.ds.base, { threads });
  const buildSeconds = since(start);
  const dir = mkdtempSync(join(tmpdir(), 'zgq-paper-'));
  try {
    await index.save(join(dir, 'index.zgq'));
    const fileBytes = statSync(join(dir, 'index.zgq')).size;
    const memory = index.stats().memory;
    return { index, options, buildSeconds, fileBytes, memoryBytes: memory.total - memory.scratch, traversal: index.options.search.traversal };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One query per call (`threads` 0) or every query in one batch call on `threads` threads. */
export function zgqSide(label: string, z: BuiltZgq, data: PaperData, search: SearchOptions, threads = 0): Side {
  const { dim, nQueries: nq, queries } = data.ds;
  return {
    label,
    async pass(out) {
      if (threads > 0) {
        const start = performance.now();
        const r = await z.index.searchBatch(queries, K, { ...search, threads });
        const seconds = since(start);
        out.set(r.ids);
        return seconds;
      }
      const start = performance.now();
      for (let q = 0; q < nq; q++) out.set(z.index.search(queries.subarray(q * dim, (q + 1) * dim), K, search).ids, q * K);
      return since(start);
    },
  };
}

/** Recall of one untimed batch at these options. */
export async function zgqRecall(z: BuiltZgq, data: PaperData, search: SearchOptions): Promise<number> {
  const r = await z.index.searchBatch(data.ds.queries, K, { ...search, threads: 1 });
  return recallOf(data, r.ids);
}

/** The smallest ef of EF_LADDER (with `search` otherwise) whose recall reaches target, else the largest. */
export async function efForRecall(z: BuiltZgq, data: PaperData, target: number, search: SearchOptions = {}): Promise<number> {
  for (const ef of EF_LADDER) if ((await zgqRecall(z, data, { ...search, ef })) >= target) return ef;
  return EF_LADDER[EF_LADDER.length - 1];
}
