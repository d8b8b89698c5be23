// What one build holds at its peak: the dataset loaded, then one build, alone in this process;
// peak RSS (process.resourceUsage().maxRSS) minus the RSS with the data loaded, against the
// finished index's stats().memory.total.
//   node --import tsx bench/build-peak.ts <dataset> [shards] [--threads 1] [--half-above BYTES]
// shards > 1 lowers the shard bound until the build splits into that many; --half-above sets
// buildRows.halfAbove (0: every binary16 build links on binary16 rows).
import { ZGQIndex } from '../src/index.js';
import { boundForShards, shardBounds } from '../src/shards.js';
import { buildRows } from '../src/budget.js';
import { resolveOptions } from '../src/options.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const positional = args.filter((a, i) => !a.startsWith('--') && !(args[i - 1] ?? '').startsWith('--'));
const name = positional[0] ?? 'synthetic-1m';
const shards = Number(positional[1] ?? 1);
const threads = Number(option('--threads') ?? 1);
if (option('--half-above') !== undefined) buildRows.halfAbove = Number(option('--half-above'));

const ds = await loadDataset(datasetSpec(name, { queries: 100 }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: 10 });
if (shards > 1) shardBounds.maxBytes = boundForShards(ds.nBase, resolveOptions({ dim: ds.dim }), threads, shards);
const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(3);
const before = process.memoryUsage().rss;
const index = new ZGQIndex({ dim: ds.dim, seed: 1 });
const t = performance.now();
await index.build(ds.base, { threads });
const peak = process.resourceUsage().maxRSS * 1024;
const { memory, shards: built } = index.stats();
console.log(
  `${ds.name}: ${built} shard(s), build ${((performance.now() - t) / 1000).toFixed(0)} s on ${threads} thread(s); RSS with the data ${gib(before)} GiB, ` +
    `peak ${gib(peak)} GiB; index ${gib(memory.total)} GiB (WebAssembly memory ${gib(memory.arena)} GiB); build over the data: ${((peak - before) / memory.total).toFixed(2)}x the index`,
);
