// Query kernels of two builds, A/B in one process: the index is built once with this checkout's
// kernels; a second kernel module (another build's build/zgq.wasm) is instantiated on the same
// memory, and both answer the same queries with the same context, in alternating passes. The ratio
// of their per-query times is immune to the machine's slow and fast spells that move separate runs.
// Before timing, every query is run on both and their results compared (ids and distances, bit for bit).
// The context block layout must be the same in both builds (check assembly/query.ts).
//   node --import tsx bench/kernel-ab.ts <base.wasm> [bench dataset, default siftsmall] [search options JSON] [passes]
// e.g. a base from an earlier commit:
//   git worktree add /tmp/zgq-base <commit> && (cd /tmp/zgq-base && npm ci && npm run build:wasm)
//   node --import tsx bench/kernel-ab.ts /tmp/zgq-base/build/zgq.wasm siftsmall '{"ef":16,"nProbe":2,"rerank":2}'
import { readFileSync } from 'node:fs';
import { ZGQIndex } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { CTX, CTX_FIELDS } from '../src/search.js';

const [basePath, which = 'siftsmall', optionsJson = '{}', passesArg = '21'] = process.argv.slice(2);
if (!basePath) throw new Error('usage: bench/kernel-ab.ts <base.wasm> [bench dataset] [search options JSON] [passes]');
// the bench's own data (synthetic-100k: the paper recipe, seed 1)
const ds = await loadDataset(datasetSpec(which), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: 10 });
const { dim, base, queries: queryData } = ds;
const nq = queryData.length / dim;
const index = new ZGQIndex({ dim });
await index.build(base, { threads: 1 });
const options = { ...index.options.search, ...(JSON.parse(optionsJson) as Record<string, number>) };

// internals: the searcher's context and the kernels (this script compares kernel builds, nothing else)
interface Internals {
  built: {
    kernels: { k: Record<string, (...args: number[]) => number>; arena: { memory: WebAssembly.Memory } };
    searcher: { ctx: number; plan(k: number, o: typeof options): number[]; queryBuffer(k: number, o: typeof options): Float32Array };
  };
}
const { built } = index as unknown as Internals;
const current = built.kernels.k;
const other = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(basePath)), { env: { memory: built.kernels.arena.memory } })
  .exports as unknown as typeof current;
const { ctx } = built.searcher;
const args = built.searcher.plan(10, options);
const query = built.searcher.queryBuffer(10, options);
const rows = Array.from({ length: nq }, (_, i) => queryData.slice(i * dim, (i + 1) * dim));
const repeat = Math.max(1, Math.round(20000 / nq));

function pass(k: typeof current): number {
  const t = performance.now();
  for (let r = 0; r < repeat; r++) {
    for (let i = 0; i < nq; i++) {
      query.set(rows[i]);
      k.searchQuery(ctx, ...args);
    }
  }
  return ((performance.now() - t) * 1000) / (repeat * nq);
}
// both builds must return the same neighbours at the same distances, bit for bit
const found = (k: typeof current, i: number): number[] => {
  query.set(rows[i]);
  const got = k.searchQuery(ctx, ...args);
  const ptr = new Uint32Array(built.kernels.arena.memory.buffer, ctx, CTX_FIELDS);
  const words = new Uint32Array(built.kernels.arena.memory.buffer);
  return [got, ...words.subarray(ptr[CTX.outIds] >>> 2, (ptr[CTX.outIds] >>> 2) + got), ...words.subarray(ptr[CTX.outDist] >>> 2, (ptr[CTX.outDist] >>> 2) + got)];
};
let differing = 0;
for (let i = 0; i < nq; i++) if (found(other, i).join() !== found(current, i).join()) differing++;
console.log(differing === 0 ? `same results from both builds on all ${nq} queries` : `RESULTS DIFFER on ${differing} of ${nq} queries`);
pass(other);
pass(current);
const a: number[] = [];
const b: number[] = [];
for (let p = 0; p < Number(passesArg); p++) {
  a.push(pass(other));
  b.push(pass(current));
}
const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1];
console.log(`${which} ${JSON.stringify(options)}`);
console.log(`base ${median(a).toFixed(2)} us per query, this checkout ${median(b).toFixed(2)} us (medians of ${a.length} alternating passes)`);
console.log(`base / this: ${median(a.map((x, i) => x / b[i])).toFixed(3)} (median of per-pass ratios)`);
process.exit(0);
