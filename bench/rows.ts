// Where the re-ranking rows live, and what each place costs: one saved index, loaded whole
// ('memory'), loaded with its rows in JS memory ('heap'), and opened with its rows left in the file
// ('file', ZGQIndex.open). For each: the time from the call to the first answer, the bytes the index
// holds (stats().memory.total; a file's rows are the OS page cache's), and recall@10 and µs per
// query over a PQ-walk grid (zones probed x rerank x ef; every place walks the same graph on the
// same codes, so recall is the same), alternating passes, median; then the fastest configuration
// of each at recall@10 0.90 / 0.95 / 0.99.
//   node --import tsx bench/rows.ts <dataset> <index file> [passes] [--threads 2] [--small]
// --small: a grid of 6 points at the default zones (for 10M-scale indexes, whose queries take ms).
// Builds the index and saves it to <index file> first when that file does not exist. The file was
// just written or read, so its pages are in the OS cache: a cold first query would read from disk.
import { existsSync } from 'node:fs';
import { ZGQIndex, type RowPlace } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { median } from '../src/bench/metrics.js';
import { recallAtK } from '../src/data/groundtruth.js';

const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !(all[i - 1] ?? '').startsWith('--'));
const [name, file] = args;
if (!name || !file) throw new Error('usage: bench/rows.ts <dataset> <index file> [passes] [--threads 2]');
const passes = Number(args[2] ?? 3);
const threadsAt = process.argv.indexOf('--threads');
const threads = threadsAt > 0 ? Number(process.argv[threadsAt + 1]) : 2;
const K = 10;
const small = process.argv.includes('--small');
const EFS = small ? [64, 256, 1024] : [32, 64, 128, 256, 512, 1024];
const RERANKS = small ? [8, 32] : [4, 8, 32];
const TARGETS = [0.9, 0.95, 0.99];
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

const ds = await loadDataset(datasetSpec(name, { queries: 500 }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: K });
const queries = Array.from({ length: ds.nQueries }, (_, q) => ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim));
if (!existsSync(file)) {
  const index = new ZGQIndex({ dim: ds.dim, metric: 'l2', seed: 1 });
  const t = performance.now();
  await index.build(ds.base, { threads });
  console.log(`built in ${((performance.now() - t) / 1000).toFixed(1)} s on ${threads} threads; saving to ${file}`);
  await index.save(file);
}

const places: { place: RowPlace; index: ZGQIndex; firstMs: number }[] = [];
for (const place of ['file', 'heap', 'memory'] as const) {
  const t = performance.now();
  const index = await ZGQIndex.load(file, { rows: place });
  index.search(queries[0], K);
  places.push({ place, index, firstMs: performance.now() - t });
}
console.log(`\n${ds.name} (${ds.nBase} x ${ds.dim}, ${ds.nQueries} queries); ${places[0].index.stats().shards} shard(s); defaults when served outside memory ${JSON.stringify(places[0].index.options.search)}\n`);
console.log('| rows | time to first answer | memory the index holds |');
console.log('| --- | ---: | ---: |');
for (const { place, index, firstMs } of places) console.log(`| ${place} | ${(firstMs / 1000).toFixed(2)} s | ${mib(index.stats().memory.total)} |`);

const truth = ds.truth.ids;
const points: { place: RowPlace; ef: number; rerank: number; nProbe: number; recall: number; us: number }[] = [];
const nProbe0 = places[0].index.options.search.nProbe;
const grid = (small ? [nProbe0] : [nProbe0, 2 * nProbe0, 4 * nProbe0]).flatMap((nProbe) => RERANKS.flatMap((rerank) => EFS.filter((ef) => K * rerank <= 2 * ef).map((ef) => ({ nProbe, rerank, ef }))));
{
  for (const { nProbe, rerank, ef } of grid) {
    const options = { ef, rerank, nProbe, traversal: 'pq' as const };
    const times = places.map(() => [] as number[]);
    const found = places.map(() => new Uint32Array(ds.nQueries * K));
    for (let pass = 0; pass < passes; pass++) {
      places.forEach(({ index }, i) => {
        const t = performance.now();
        for (let q = 0; q < ds.nQueries; q++) found[i].set(index.search(queries[q], K, options).ids, q * K);
        times[i].push(performance.now() - t);
      });
    }
    places.forEach(({ place }, i) => points.push({ place, ef, rerank, nProbe, recall: recallAtK(found[i], truth, ds.nQueries, K, ds.truth.depth, K), us: (1000 * median(times[i])) / ds.nQueries }));
  }
}
console.log(`\nPQ walk, one query per call, ${passes} alternating passes, median µs per query\n`);
console.log('| nProbe | ef | rerank | recall@10 | ' + places.map((p) => `${p.place} µs`).join(' | ') + ' | file / memory |');
console.log('| ---: | ---: | ---: | ---: | ' + places.map(() => '---:').join(' | ') + ' | ---: |');
for (const p of points.filter((x) => x.place === 'memory')) {
  const at = places.map(({ place }) => points.find((x) => x.place === place && x.ef === p.ef && x.rerank === p.rerank && x.nProbe === p.nProbe)!);
  console.log(`| ${p.nProbe} | ${p.ef} | ${p.rerank} | ${p.recall.toFixed(4)} | ${at.map((x) => x.us.toFixed(1)).join(' | ')} | ${(at[0].us / p.us).toFixed(2)}× |`);
}
console.log('\n| recall@10 ≥ | ' + places.map((p) => `${p.place} QPS (nProbe, ef, rerank)`).join(' | ') + ' |');
console.log('| --- | ' + places.map(() => '---:').join(' | ') + ' |');
for (const target of TARGETS) {
  const best = places.map(({ place }) => points.filter((x) => x.place === place && x.recall >= target).sort((a, b) => a.us - b.us)[0]);
  console.log(`| ${target} | ` + best.map((b) => (b ? `${Math.round(1e6 / b.us)} (${b.nProbe}, ${b.ef}, ${b.rerank})` : '–')).join(' | ') + ' |');
}
places[0].index.close();
