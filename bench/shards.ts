// What splitting an index into shards costs its queries: one index and the same data split into
// `shards` shards (the shard bound lowered to force it), built alike, searched over one beam-width
// sweep in alternating passes; recall@10 against exact ground truth and the time per query (median
// of the passes), and the fastest configuration of each at recall@10 0.90 / 0.95 / 0.99.
//   node --import tsx bench/shards.ts [dataset] [shards] [passes] [--threads 1]
import { ZGQIndex } from '../src/index.js';
import { boundForShards, shardBounds } from '../src/shards.js';
import { resolveOptions } from '../src/options.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { median } from '../src/bench/metrics.js';
import { recallAtK } from '../src/data/groundtruth.js';

const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !(all[i - 1] ?? '').startsWith('--'));
const name = args[0] ?? 'synthetic-100k';
const shards = Number(args[1] ?? 4);
const passes = Number(args[2] ?? 5);
const threadsAt = process.argv.indexOf('--threads');
const threads = threadsAt > 0 ? Number(process.argv[threadsAt + 1]) : 1;
const K = 10;
const EFS = [16, 24, 32, 48, 64, 96, 128, 192];
const TARGETS = [0.9, 0.95, 0.99];

const ds = await loadDataset(datasetSpec(name, { queries: 500 }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: K });
const queries = Array.from({ length: ds.nQueries }, (_, q) => ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim));

async function build(bound: number): Promise<{ index: ZGQIndex; seconds: number }> {
  shardBounds.maxBytes = bound;
  const index = new ZGQIndex({ dim: ds.dim, metric: 'l2', seed: 1 });
  const t = performance.now();
  await index.build(ds.base, { threads });
  return { index, seconds: (performance.now() - t) / 1000 };
}

const one = await build(4 * 1024 ** 3);
const split = await build(boundForShards(ds.nBase, resolveOptions({ dim: ds.dim }), threads, shards));
const indexes = [{ label: 'one index', ...one }, { label: `${split.index.stats().shards} shards`, ...split }];
for (const { label, index, seconds } of indexes) {
  const s = index.stats();
  console.log(`${label}: ${s.zones} zones, build ${seconds.toFixed(1)} s on ${threads} thread(s), ${(s.memory.total / 2 ** 20).toFixed(1)} MiB, defaults ef ${index.options.search.ef} nProbe ${index.options.search.nProbe}`);
}

const truth = ds.truth.ids;
const rows: { label: string; ef: number; recall: number; us: number }[] = [];
for (const ef of EFS) {
  const times = indexes.map(() => [] as number[]);
  const found = indexes.map(() => new Uint32Array(ds.nQueries * K));
  for (let pass = 0; pass < passes; pass++) {
    indexes.forEach(({ index }, i) => {
      const t = performance.now();
      for (let q = 0; q < ds.nQueries; q++) found[i].set(index.search(queries[q], K, { ef }).ids, q * K);
      times[i].push(performance.now() - t);
    });
  }
  indexes.forEach(({ label }, i) => rows.push({ label, ef, recall: recallAtK(found[i], truth, ds.nQueries, K, ds.truth.depth, K), us: (1000 * median(times[i])) / ds.nQueries }));
}
console.log(`\n${ds.name} (${ds.nBase} x ${ds.dim}, ${ds.nQueries} queries), one query per call, ${passes} alternating passes, median\n`);
console.log('| ef | ' + indexes.map((x) => `${x.label}: recall@10 | µs/query`).join(' | ') + ' |');
console.log('| --- | ' + indexes.map(() => '---: | ---:').join(' | ') + ' |');
for (const ef of EFS) console.log(`| ${ef} | ` + indexes.map((x) => rows.find((r) => r.label === x.label && r.ef === ef)!).map((r) => `${r.recall.toFixed(4)} | ${r.us.toFixed(1)}`).join(' | ') + ' |');
console.log('\n| recall@10 | ' + indexes.map((x) => `${x.label} µs/query (ef)`).join(' | ') + ' | shards / one |');
console.log('| --- | ' + indexes.map(() => '---:').join(' | ') + ' | ---: |');
for (const target of TARGETS) {
  const best = indexes.map((x) => rows.filter((r) => r.label === x.label && r.recall >= target).sort((a, b) => a.us - b.us)[0]);
  const cells = best.map((b) => (b ? `${b.us.toFixed(1)} (${b.ef})` : 'not reached'));
  console.log(`| ${target} | ${cells.join(' | ')} | ${best[0] && best[1] ? `${(best[1].us / best[0].us).toFixed(2)}×` : '-'} |`);
}
