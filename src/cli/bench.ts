/**
 * `zgq bench`: ZGQ side by side with hnswlib-node, usearch and FAISS on the same data in one run;
 * prints tables and writes JSON, SVG plots and a markdown summary (see BENCHMARKS.md).
 */
import { Command, InvalidArgumentError } from 'commander';
import { ZGQError } from '../errors.js';
import { checkDatasetFiles, DATASET_NAMES, datasetSpec, DEFAULT_DATASETS, EMBEDDING_DATASETS, fileSpec, LARGE_DATASET, QUICK_DATASETS, type DatasetSpec } from '../bench/datasets.js';
import { defaultCacheDir, defaultDataDir, defaultOutDir } from '../bench/paths.js';
import { setupFaissVenv } from '../bench/peers/faiss.js';
import { terminalProgress } from '../bench/progress.js';
import { datasetTable } from '../bench/report/tables.js';
import { writeReport } from '../bench/report/write.js';
import { ALL_LIBRARIES, runBench } from '../bench/runner.js';
import type { LibraryId } from '../bench/types.js';
import { VECTOR_FORMATS } from '../data/files.js';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Options as commander hands them over. */
interface BenchCliOptions {
  quick?: boolean;
  dataset?: string[];
  large?: boolean;
  k: number;
  out?: string;
  passes: number;
  queries?: number;
  libraries?: string[];
  batch: boolean;
  filtered?: boolean;
  python?: string;
  dataDir?: string;
  cacheDir?: string;
  setupFaiss?: boolean;
  base?: string;
  queriesFile?: string;
  column?: string;
  metric?: string;
}

/** Adds the `bench` subcommand to the `zgq` program. */
export function registerBench(program: Command): Command {
  program
    .command('bench')
    .description('measure ZGQ against hnswlib-node, usearch and FAISS on the same data (recall@k vs QPS)')
    .option('--quick', `smoke run, under 2 minutes: ${QUICK_DATASETS.join(' + ')} with short sweeps`)
    .option('--dataset <names>', `comma-separated datasets (${DATASET_NAMES.join(', ')}; 'embeddings' for ${EMBEDDING_DATASETS.join(', ')}); default ${DEFAULT_DATASETS.join(',')}`, list)
    .option('--large', `also run ${LARGE_DATASET} (long: about an hour of builds on 2 cores)`)
    .option('-k, --k <k>', 'neighbours per query', positiveInt('--k'), 10)
    .option('--out <dir>', 'folder for bench-results.json, summary.md and the SVG plots (default bench/results)')
    .option('--passes <n>', 'timed passes per configuration; QPS is their median', positiveInt('--passes'), 3)
    .option('--queries <n>', 'queries per dataset (synthetic: generated; real: the first n; --base: held out of it, default up to 1000)', positiveInt('--queries'))
    .option('--base <file>', `benchmark your own vectors (${VECTOR_FORMATS}; HDF5: 'train'), named file:<name> in the report; exact ground truth is computed`)
    .option('--queries-file <file>', "queries for --base (default: HDF5 'test' of the same file, else --queries rows held out of the base)")
    .option('--column <name>', 'vector column of a Parquet or Arrow --base and --queries-file')
    .option('--metric <metric>', 'metric of --base: l2 or cosine (vectors normalised to unit length)', 'l2')
    .option('--libraries <names>', `comma-separated subset of ${ALL_LIBRARIES.join(',')}`, list)
    .option('--no-batch', 'skip batch mode (all queries in one call)')
    .option('--filtered', "also time ZGQ through filters: random ones admitting 1 %, 10 %, 50 %, and each query's nearest 5 % left out")
    .option('--python <path>', 'Python interpreter with faiss + numpy for the FAISS child')
    .option('--data-dir <dir>', 'folder holding siftsmall/ and fashion-mnist/ (default ../shared/data from the package root, or $ZGQ_DATA_DIR)')
    .option('--cache-dir <dir>', 'ground-truth / exchange-file cache (default bench/results/cache)')
    .option('--setup-faiss', 'create <cache-dir>/venv with faiss-cpu and numpy (pip), then exit')
    .action(async (o: BenchCliOptions) => {
      const cacheDir = o.cacheDir ?? defaultCacheDir();
      if (o.setupFaiss) {
        const py = await setupFaissVenv(cacheDir, o.python);
        process.stderr.write(`FAISS ready: ${py} (zgq bench uses it automatically)\n`);
        return;
      }
      const dataDir = o.dataDir ?? defaultDataDir();
      if (o.base === undefined && o.queriesFile !== undefined) throw new ZGQError('INVALID_ARGUMENT', '--queries-file needs --base');
      // --base alone measures that file only; with --dataset or --large, those sets as well
      const builtIn = o.base !== undefined && !o.dataset && !o.large ? [] : [...(o.quick ? QUICK_DATASETS : DEFAULT_DATASETS), ...(o.large ? [LARGE_DATASET] : [])];
      const names = o.dataset?.flatMap((n) => (n === 'embeddings' ? EMBEDDING_DATASETS : [n])) ?? builtIn;
      if (o.dataset && o.large && !names.includes(LARGE_DATASET)) names.push(LARGE_DATASET);
      const specs: DatasetSpec[] = names.map((n) => datasetSpec(n, { queries: o.queries, quick: o.quick }));
      if (o.base !== undefined) {
        specs.push(fileSpec(o.base, { queries: o.queriesFile, nQueries: o.queries, metric: o.metric as 'l2' | 'cosine', column: o.column }));
      } else if (o.metric !== 'l2') {
        throw new ZGQError('INVALID_ARGUMENT', '--metric applies to --base only; the built-in sets are L2');
      }
      for (const s of specs) checkDatasetFiles(s, dataDir); // fail before anything is built
      const libraries = (o.libraries ?? [...ALL_LIBRARIES]) as LibraryId[];
      for (const l of libraries) {
        if (!ALL_LIBRARIES.includes(l)) throw new ZGQError('INVALID_ARGUMENT', `unknown library '${l}'; known: ${ALL_LIBRARIES.join(', ')}`);
      }
      const progress = terminalProgress();
      const started = performance.now();
      const report = await runBench({
        datasets: specs, k: o.k, passes: o.passes, quick: !!o.quick, libraries, batch: o.batch, filtered: !!o.filtered, dataDir, cacheDir,
        python: o.python, progress, command: `zgq ${process.argv.slice(2).join(' ')}`,
      });
      for (const ds of report.datasets) process.stdout.write(`${datasetTable(ds, o.k)}\n`);
      const written = await writeReport(report, o.out ?? defaultOutDir());
      progress.log(`\nwrote ${written.json}, ${written.summary}${written.plots.length ? `, ${written.plots.join(', ')}` : ''}`);
      for (const e of written.plotErrors) progress.log(`no plot for ${e}`);
      progress.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
    });
  return program;
}
