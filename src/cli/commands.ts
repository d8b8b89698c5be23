/**
 * `zgq build | search | info | add | remove`: an index file on disk, changed in place by atomic
 * rewrites (a crash leaves the old file). Writers of one file take turns: add and remove load,
 * change and save under the file's writers' lock (ZGQIndex.update), waiting up to --wait seconds
 * for another writer. Progress goes to stderr, results to stdout or --output.
 */
import { writeFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { ZGQError } from '../errors.js';
import { NO_ID, type RowPlace, type SearchOptions, ZGQIndex } from '../index.js';
import { type Metric, type Traversal, TRAVERSALS } from '../options.js';
import { HDF5_BASE, HDF5_QUERIES, readIdFile, readVectorFile, VECTOR_FORMATS, type VectorFile } from '../data/files.js';
import { buildProgress, fractionProgress } from './progress.js';

export function int(name: string, min = 1) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** Default of --wait, in seconds: outlasts a lock left by a killed writer (taken over after 20 s). */
const DEFAULT_WAIT_S = 30;

function seconds(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number of seconds >= 0`);
    return n;
  };
}

/** --wait, for the commands that write an index file. */
export function waitOption(): Option {
  return new Option('--wait <seconds>', 'how long to wait while another process writes the index file (0: fail at once)')
    .argParser(seconds('--wait'))
    .default(DEFAULT_WAIT_S);
}

function recallTarget(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a number in (0, 1], such as 0.95`);
    return n;
  };
}

/** One line per search option, as `tune` reports them. */
function describeSearch(o: { ef: number; traversal: string; nProbe: number; rerank: number }): string {
  if (o.traversal === 'scan') return 'traversal scan (every stored vector compared)';
  if (o.traversal === 'fastscan') return `traversal fastscan (4-bit codes of every vector), rerank ${o.rerank}`;
  return `traversal ${o.traversal}, ef ${o.ef}, nProbe ${o.nProbe}${o.traversal === 'pq' ? `, rerank ${o.rerank}` : ''}`;
}

function ratio(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 1) throw new InvalidArgumentError(`${name} must be a number >= 1`);
    return n;
  };
}

/** --traversal, for `search` and the demo. */
export function traversalOption(): Option {
  return new Option('--traversal <distances>', 'what the zone scans and the graph walk measure').choices(TRAVERSALS);
}

/** Ids for the rows of a vector file: from --ids, from the file itself, or --first-id onwards. */
async function idsFor(o: { ids?: string; firstId?: number }, fileIds: Uint32Array | null, n: number, path: string, required: boolean): Promise<Uint32Array | undefined> {
  const given = [o.ids !== undefined, fileIds !== null, o.firstId !== undefined].filter(Boolean).length;
  if (given > 1) throw new ZGQError('INVALID_ARGUMENT', 'give ids one way only: --ids, "id" fields in the vector file, or --first-id');
  let ids: Uint32Array | undefined;
  if (o.ids !== undefined) ids = await readIdFile(o.ids);
  else if (fileIds) ids = fileIds;
  else if (o.firstId !== undefined) {
    if (o.firstId + n > 0xffffffff) throw new ZGQError('INVALID_ARGUMENT', `--first-id ${o.firstId} leaves no room for ${n} ids`);
    ids = Uint32Array.from({ length: n }, (_, i) => o.firstId! + i);
  } else if (required) {
    throw new ZGQError('INVALID_ARGUMENT', `${path}: new vectors need ids: --ids <file>, "id" fields in JSON lines, an "id" column in CSV, Parquet or Arrow, or --first-id <n>`);
  }
  if (ids && ids.length !== n) throw new ZGQError('INVALID_ARGUMENT', `${o.ids ?? path}: ${ids.length} ids for ${n} vectors`);
  return ids;
}

/** --dataset, for the commands that read vectors: which dataset of an HDF5 file. */
function datasetOption(fallback: string): Option {
  return new Option('--dataset <name>', `dataset of an HDF5 vector file (default: ${fallback}, as in ann-benchmarks files)`);
}

/** --column, for the commands that read vectors: the vector column of a Parquet or Arrow file. */
function columnOption(): Option {
  return new Option('--column <name>', 'vector column of a Parquet or Arrow file (default: "vector", "embedding" or the only list column)');
}

/** Which part of a vector file to read: --dataset (HDF5) and --column (Parquet, Arrow). */
interface FilePart {
  dataset: string;
  column?: string;
}

async function vectorsOf(path: string, part: FilePart): Promise<VectorFile> {
  const file = await readVectorFile(path, part);
  if (file.n === 0) throw new ZGQError('EMPTY_INPUT', `${path}: holds no vectors`);
  return file;
}

function checkDim(index: ZGQIndex, file: VectorFile, vectorsPath: string, what: string): void {
  if (file.dim !== index.dim) {
    throw new ZGQError('DIMENSION_MISMATCH', `${vectorsPath}: ${what} have ${file.dim} values; the index dim is ${index.dim}`);
  }
}

/** An index file and a vector file of its dimension. */
async function indexAndVectors(
  indexPath: string, vectorsPath: string, part: FilePart, what: string, rows: RowPlace = 'memory',
): Promise<{ index: ZGQIndex; file: VectorFile }> {
  const index = await ZGQIndex.load(indexPath, { rows });
  const file = await vectorsOf(vectorsPath, part);
  checkDim(index, file, vectorsPath, what);
  return { index, file };
}

/**
 * Apply `change` to the index file at `indexPath`: in place under its writers' lock (waiting up to
 * `waitS` seconds), or, with `output`, read from `indexPath` and saved to `output` (locked there).
 */
async function changeIndexFile(indexPath: string, output: string | undefined, waitS: number, change: (index: ZGQIndex) => Promise<void>): Promise<ZGQIndex> {
  const wait = waitS * 1000;
  if (output === undefined) return ZGQIndex.update(indexPath, change, { wait });
  const index = await ZGQIndex.load(indexPath);
  await change(index);
  await index.save(output, { wait });
  return index;
}

function searchOptions(o: { ef?: number; nProbe?: number; rerank?: number; scan?: number; scanRatio?: number; traversal?: Traversal }): SearchOptions {
  const s: SearchOptions = {};
  if (o.traversal !== undefined) s.traversal = o.traversal;
  if (o.ef !== undefined) s.ef = o.ef;
  if (o.nProbe !== undefined) s.nProbe = o.nProbe;
  if (o.rerank !== undefined) s.rerank = o.rerank;
  if (o.scan !== undefined) s.scan = o.scan;
  if (o.scanRatio !== undefined) s.scanRatio = o.scanRatio;
  return s;
}

export function registerIndexCommands(program: Command): void {
  program
    .command('build')
    .description(`build an index over a vector file (${VECTOR_FORMATS})`)
    .argument('<vectors>', 'vector file')
    .requiredOption('-o, --output <index>', 'index file to write')
    .addOption(datasetOption(HDF5_BASE))
    .addOption(columnOption())
    .addOption(new Option('--metric <metric>', 'distance').choices(['l2', 'ip', 'cosine']).default('l2'))
    .option('--ids <file>', 'ids of the vectors, one per line (default: "id" fields, else row numbers)')
    .option('--first-id <n>', 'ids n, n + 1, ... for the rows', int('--first-id', 0))
    .option('--degree <R>', 'graph out-degree', int('--degree'))
    .option('--ef-construction <L>', 'build beam width', int('--ef-construction'))
    .option('--zones <count>', 'zone count (default about sqrt(n))', int('--zones'))
    .addOption(new Option('--storage <type>', 're-ranking vectors').choices(['float16', 'float32']))
    .option('--threads <count>', 'build threads (default: all CPUs)', int('--threads'))
    .option('--seed <seed>', 'seed of every random choice', int('--seed', 0))
    .option('--target-recall <r>', 'tune the search defaults for this recall@10 (default: calibrated to reach 0.95)', recallTarget('--target-recall'))
    .option('--shards <count>', 'split into at least this many shards (to serve them from separate processes: zgq cluster)', int('--shards'))
    .addOption(new Option('--device <device>', 'where the passes over every row run (zone assignment, graph candidates): cpu, gpu (WebGPU; in Node the optional package webgpu) or auto').choices(['cpu', 'gpu', 'auto']).default('cpu'))
    .addOption(waitOption())
    .action(async (vectorsPath: string, o) => {
      const file = await vectorsOf(vectorsPath, { dataset: o.dataset ?? HDF5_BASE, column: o.column });
      const ids = await idsFor(o, file.ids, file.n, vectorsPath, false);
      const index = new ZGQIndex({
        dim: file.dim, metric: o.metric as Metric, degree: o.degree, efConstruction: o.efConstruction, zones: o.zones,
        storage: o.storage, seed: o.seed,
      });
      const progress = buildProgress();
      const started = performance.now();
      try {
        await index.build(file.data, { ids, threads: o.threads, onProgress: progress.onProgress, targetRecall: o.targetRecall, shards: o.shards, device: o.device });
      } finally {
        progress.stop();
      }
      await index.save(o.output, { wait: o.wait * 1000 });
      const s = index.stats();
      process.stderr.write(
        `built ${s.size} x ${s.dim} (${s.metric}) in ${((performance.now() - started) / 1000).toFixed(1)} s: ${s.zones} zones${s.shards > 1 ? ` in ${s.shards} shards` : ''}, ` +
        `${(s.memory.total / 2 ** 20).toFixed(1)} MiB -> ${o.output}\n`,
      );
      if (o.device !== 'cpu' && s.device?.reason) process.stderr.write(`zgq: the zones were assigned on the CPU: ${s.device.reason}\n`);
    });

  program
    .command('search')
    .description('search an index for the k nearest neighbours of each query')
    .argument('<index>', 'index file')
    .argument('<queries>', `query vectors (${VECTOR_FORMATS})`)
    .addOption(datasetOption(HDF5_QUERIES))
    .addOption(columnOption())
    .option('-k, --k <k>', 'neighbours per query', int('-k'), 10)
    .addOption(new Option('--format <format>', 'output').choices(['tsv', 'json']).default('tsv'))
    .option('-o, --output <file>', 'write results here instead of stdout')
    .option('--filter <file>', 'return only the ids listed in this file')
    .option('--ef <ef>', 'search beam width', int('--ef'))
    .option('--n-probe <zones>', 'zones selected per query', int('--n-probe'))
    .option('--rerank <factor>', 'exact re-rank factor', int('--rerank'))
    .option('--scan <zones>', 'zones scanned in full per query', int('--scan', 0))
    .option('--scan-ratio <ratio>', 'adaptive scan bound', ratio('--scan-ratio'))
    .addOption(traversalOption())
    .option('--threads <count>', 'search threads (default: all CPUs)', int('--threads'))
    .addOption(new Option('--device <device>', "where the batch runs: cpu, gpu (WebGPU; in Node the optional package webgpu) or auto").choices(['cpu', 'gpu', 'auto']).default('cpu'))
    .addOption(new Option('--rows <place>', "where the index's rows are kept while it searches: file reads each query's candidates from the index file (no load of the rows), heap keeps them in JS memory (both walk on PQ codes, one thread)").choices(['memory', 'heap', 'file']).default('memory'))
    .action(async (indexPath: string, queriesPath: string, o) => {
      const { index, file: queries } = await indexAndVectors(indexPath, queriesPath, { dataset: o.dataset ?? HDF5_QUERIES, column: o.column }, 'queries', o.rows);
      const filter = o.filter === undefined ? undefined : await readIdFile(o.filter);
      const k: number = o.k;
      const res = await index.searchBatch(queries.data, k, { ...searchOptions(o), filter, threads: o.threads, device: o.device });
      const used = index.stats().device;
      if (o.device !== 'cpu' && used?.reason) process.stderr.write(`zgq: the batch ran on the CPU: ${used.reason}\n`);
      const lines: string[] = [];
      if (o.format === 'tsv') lines.push('query\trank\tid\tdistance');
      for (let q = 0; q < queries.n; q++) {
        const ids: number[] = [];
        const distances: number[] = [];
        for (let r = 0; r < k; r++) {
          if (res.ids[q * k + r] === NO_ID) break;
          ids.push(res.ids[q * k + r]);
          distances.push(res.distances[q * k + r]);
        }
        if (o.format === 'json') lines.push(JSON.stringify({ query: q, ids, distances }));
        else ids.forEach((id, r) => lines.push(`${q}\t${r + 1}\t${id}\t${distances[r]}`));
      }
      const text = lines.join('\n') + '\n';
      if (o.output) {
        try {
          await writeFile(o.output, text);
        } catch (err) {
          throw new ZGQError('IO', `cannot write '${o.output}': ${(err as Error).message}`, { cause: err });
        }
      } else process.stdout.write(text);
    });

  program
    .command('info')
    .description('print the size, shape and memory of an index')
    .argument('<index>', 'index file')
    .option('--json', 'print the stats as JSON')
    .action(async (indexPath: string, o) => {
      const index = await ZGQIndex.load(indexPath);
      const s = index.stats();
      if (o.json) {
        process.stdout.write(JSON.stringify({ file: indexPath, ...s, options: index.options }, null, 2) + '\n');
        return;
      }
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
      const m = s.memory;
      process.stdout.write([
        `file        ${indexPath}`,
        `vectors     ${s.size} x ${s.dim} (${s.metric})${s.deleted ? `, ${s.deleted} removed awaiting compaction` : ''}`,
        ...(s.shards > 1 ? [`shards      ${s.shards} (one WebAssembly memory each)`] : []),
        `zones       ${s.zones} (sizes ${s.zoneSizes.min}..${s.zoneSizes.max}, mean ${s.zoneSizes.mean.toFixed(1)})${s.zoneGroups ? `, ${s.zoneGroups} groups` : ''}`,
        `graph       degree ${s.degree}, mean out-degree ${s.meanDegree.toFixed(1)}`,
        `pq          ${s.pqSubspaces} bytes per vector${s.residual ? ', residual' : ''}; re-ranking vectors ${s.storage}`,
        `search      ef ${index.options.search.ef}, nProbe ${index.options.search.nProbe}, rerank ${index.options.search.rerank}, scan ${index.options.search.scan}, traversal ${index.options.search.traversal}`,
        `memory      ${mib(m.total)} (vectors ${mib(m.vectors)}, graph ${mib(m.graph)}, codes ${mib(m.codes)}); WebAssembly memory ${mib(m.arena)}${s.rows === 'memory' ? '' : `; rows in ${s.rows}`}`,
      ].join('\n') + '\n');
    });

  program
    .command('add')
    .description('add vectors to an index file (an id already present is replaced)')
    .argument('<index>', 'index file, rewritten atomically unless --output is given')
    .argument('<vectors>', `vector file (${VECTOR_FORMATS})`)
    .addOption(datasetOption(HDF5_BASE))
    .addOption(columnOption())
    .option('--ids <file>', 'ids of the new vectors, one per line')
    .option('--first-id <n>', 'ids n, n + 1, ... for the new vectors', int('--first-id', 0))
    .option('-o, --output <index>', 'write the changed index here instead')
    .option('--threads <count>', 'threads (default: all CPUs)', int('--threads'))
    .addOption(waitOption())
    .action(async (indexPath: string, vectorsPath: string, o) => {
      // the vectors are read before the lock is taken, so other writers wait for the change alone
      const file = await vectorsOf(vectorsPath, { dataset: o.dataset ?? HDF5_BASE, column: o.column });
      const ids = (await idsFor(o, file.ids, file.n, vectorsPath, true))!;
      let replaced = 0;
      const change = async (index: ZGQIndex): Promise<void> => {
        checkDim(index, file, vectorsPath, 'vectors');
        const before = index.size;
        const progress = fractionProgress('add');
        try {
          await index.add(file.data, ids, { threads: o.threads, onProgress: progress.onProgress });
        } finally {
          progress.stop();
        }
        replaced = before + file.n - index.size;
      };
      const index = await changeIndexFile(indexPath, o.output, o.wait, change);
      process.stderr.write(`added ${file.n} (${replaced} replaced): ${index.size} vectors -> ${o.output ?? indexPath}\n`);
    });

  program
    .command('remove')
    .description('remove vectors by id from an index file')
    .argument('<index>', 'index file, rewritten atomically unless --output is given')
    .argument('[ids...]', 'ids to remove')
    .option('--ids <file>', 'more ids to remove, one per line')
    .option('--no-compact', 'keep removed vectors as tombstones (faster; reclaimed by a later add)')
    .option('-o, --output <index>', 'write the changed index here instead')
    .addOption(waitOption())
    .action(async (indexPath: string, listed: string[], o) => {
      const ids = listed.map((t, i) => {
        if (!/^\d+$/.test(t) || Number(t) >= 0xffffffff) throw new ZGQError('INVALID_ARGUMENT', `id argument ${i + 1} '${t}' is not an integer id`);
        return Number(t);
      });
      if (o.ids !== undefined) ids.push(...(await readIdFile(o.ids)));
      if (ids.length === 0) throw new ZGQError('INVALID_ARGUMENT', 'no ids to remove: list them or give --ids <file>');
      let removed = 0;
      const index = await changeIndexFile(indexPath, o.output, o.wait, async (index) => {
        removed = index.remove(ids);
        if (o.compact) await index.compact();
      });
      process.stderr.write(`removed ${removed} of ${ids.length} ids: ${index.size} vectors -> ${o.output ?? indexPath}\n`);
    });

  program
    .command('tune')
    .description('pick the fastest search options reaching a recall@k on the index\'s own vectors, and save them as its defaults')
    .argument('<index>', 'index file, rewritten atomically unless --output is given')
    .requiredOption('--recall <r>', 'recall@k to reach, in (0, 1]', recallTarget('--recall'))
    .option('-k, --k <k>', 'neighbours per query', int('-k'), 10)
    .option('--queries <n>', 'stored vectors used as queries', int('--queries'), 300)
    .option('-o, --output <index>', 'write the tuned index here instead')
    .addOption(waitOption())
    .action(async (indexPath: string, o) => {
      const progress = fractionProgress('tune');
      let report!: Awaited<ReturnType<ZGQIndex['tune']>>;
      try {
        await changeIndexFile(indexPath, o.output, o.wait, async (index) => {
          report = await index.tune({ recall: o.recall, k: o.k, queries: o.queries, onProgress: progress.onProgress });
        });
      } finally {
        progress.stop();
      }
      const best = (qps: number | null) => (qps === null ? '' : `, ${Math.round(qps).toLocaleString('en-US')} QPS`);
      for (const t of report.tried) process.stderr.write(`  ${describeSearch(t.search)}: recall@${report.k} ${t.recall.toFixed(3)}${best(t.qps)}\n`);
      process.stdout.write(
        `${report.reached ? 'reached' : 'did not reach'} recall@${report.k} ${report.target} on ${report.queries} of the index's vectors: ` +
        `${describeSearch(report.search)}, recall@${report.k} ${report.recall.toFixed(3)}, ${Math.round(report.qps).toLocaleString('en-US')} QPS (one thread) -> ${o.output ?? indexPath}\n`,
      );
      if (!report.reached) process.exitCode = 2;
    });
}
