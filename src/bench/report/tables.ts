/**
 * Text renderings of a report: the fixed-width table printed on stdout and the markdown summary
 * (`summary.md`, pasted into BENCHMARKS.md).
 */
import { median } from '../metrics.js';
import { formatParams } from '../runner.js';
import type { BenchReport, DatasetReport, ResultRecord, TargetRow } from '../types.js';

const mb = (bytes: number) => (bytes / 1048576).toFixed(1);
const int = (x: number) => Math.round(x).toLocaleString('en-US');
const ratio = (x: number | null) => (x === null ? '–' : `${x.toFixed(2)}×`);

function pad(cells: string[][]): string {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((r) => r.map((s, c) => (c < 2 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ')).join('\n');
}

function buildOf(ds: DatasetReport, r: ResultRecord) {
  return ds.builds.find((b) => b.series === r.series && b.index === r.index);
}

function sorted(results: ResultRecord[]): ResultRecord[] {
  const order = new Map<string, number>();
  for (const r of results) if (!order.has(r.series)) order.set(r.series, order.size);
  return [...results].sort((a, b) => order.get(a.series)! - order.get(b.series)! || a.threads - b.threads || a.recall - b.recall || b.qps - a.qps);
}

/** Fixed-width table of one dataset (single-query results, batch results, target summary). */
export function datasetTable(ds: DatasetReport, k: number): string {
  const lines: string[] = [`\n== ${ds.name}: ${ds.nBase} x ${ds.dim}, ${ds.nQueries} queries, k = ${k}, ground truth: ${ds.groundTruth.source}`];
  const single = sorted(ds.results.filter((r) => r.mode === 'single'));
  const head = ['series', 'params', `recall@${k}`, 'QPS', 'mean µs', 'p50 µs', 'p99 µs', 'build s', 'memory MB', 'threads', 'pareto'];
  lines.push(
    pad([
      head,
      ...single.map((r) => {
        const b = buildOf(ds, r);
        return [
          r.series, formatParams(r.params), r.recall.toFixed(4), int(r.qps), r.latencyUs!.mean.toFixed(1), r.latencyUs!.p50.toFixed(1),
          r.latencyUs!.p99.toFixed(1), b ? b.buildSeconds.toFixed(1) : '', b ? mb(b.memory.bytes) : '', String(r.threads), r.pareto ? '*' : '',
        ];
      }),
    ]),
  );
  const batch = sorted(ds.results.filter((r) => r.mode === 'batch'));
  if (batch.length) {
    lines.push('\nbatch mode (all queries in one call):');
    lines.push(pad([['series', 'params', `recall@${k}`, 'QPS', 'threads'], ...batch.map((r) => [r.series, formatParams(r.params), r.recall.toFixed(4), int(r.qps), String(r.threads)])]));
  }
  if (ds.filtered) {
    lines.push(`\nfiltered search (ZGQ, ${formatParams(ds.filtered.params)}, one query per call):`);
    lines.push(pad([FILTERED_HEAD(k), ...filteredRows(ds)]));
  }
  lines.push('\nbest single-thread QPS at recall target:');
  lines.push(targetTableText(ds.summary));
  for (const s of ds.skipped) lines.push(`skipped ${s.library}: ${s.reason}`);
  for (const n of ds.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

const FILTERED_HEAD = (k: number) => ['filter', 'admits', 'queries', 'rows', `recall@${k}`, 'QPS', 'of unfiltered', 'outside filter', 'short'];

/** Rows of the filtered-search table: one per filter, QPS also as a share of the unfiltered row's. */
function filteredRows(ds: DatasetReport): string[][] {
  const rows = ds.filtered?.rows ?? [];
  const unfiltered = rows.find((r) => r.filter === 'none');
  return rows.map((r) => [
    r.filter, `${(r.selectivity * 100).toFixed(r.selectivity < 0.1 ? 1 : 0)} %`, String(r.queries), r.storage, r.recall.toFixed(4), int(r.qps),
    unfiltered ? `${((r.qps / unfiltered.qps) * 100).toFixed(0)} %` : '', String(r.outside), String(r.short),
  ]);
}

function targetTableText(rows: TargetRow[]): string {
  if (rows.length === 0) return '(no results)';
  const series = rows[0].best.map((b) => b.series);
  return pad([
    ['target', ...series, 'ZGQ/hnswlib', 'ZGQ/usearch'],
    ...rows.map((row) => [
      row.target.toFixed(2),
      ...row.best.map((b) => (b.qps === null ? `– (max ${b.maxRecall.toFixed(3)})` : int(b.qps))),
      ratio(row.ratios['hnswlib-node']),
      ratio(row.ratios.usearch),
    ]),
  ]);
}

/**
 * A batch cell's speed-up over the same series and configuration on one thread: the median of its
 * per-pass ratios (the two cells of a pass run back to back), or null without a one-thread cell.
 */
export function speedupOverOneThread(r: ResultRecord, batch: ResultRecord[]): number | null {
  const key = formatParams(r.params);
  const one = batch.find((b) => b.threads === 1 && b.series === r.series && formatParams(b.params) === key);
  if (!one) return null;
  const passes = Math.min(one.passQps.length, r.passQps.length);
  if (passes === 0) return null;
  return median(Array.from({ length: passes }, (_, p) => r.passQps[p] / one.passQps[p]));
}

function mdTable(head: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const a = align ?? head.map((_, i) => (i === 0 ? 'l' : 'r'));
  return [
    `| ${head.join(' | ')} |`,
    `| ${a.map((x) => (x === 'l' ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Markdown of the target summary: best QPS (and its configuration) per series, and ZGQ's ratios. */
export function targetTableMarkdown(rows: TargetRow[], k: number): string {
  if (rows.length === 0) return '_no results_';
  const series = rows[0].best.map((b) => b.series);
  return mdTable(
    [`recall@${k} ≥`, ...series, 'ZGQ / hnswlib-node', 'ZGQ / usearch'],
    rows.map((row) => [
      row.target.toFixed(2),
      ...row.best.map((b) => (b.qps === null ? `– (max ${b.maxRecall.toFixed(3)})` : `${int(b.qps)} <sub>${formatParams(b.params ?? {})}</sub>`)),
      `**${ratio(row.ratios['hnswlib-node'])}**`,
      `**${ratio(row.ratios.usearch)}**`,
    ]),
  );
}

/** Markdown summary of a whole report. `plots` maps dataset name to the SVG file name beside the summary. */
export function summaryMarkdown(report: BenchReport, plots: Record<string, string>): string {
  const { k } = report.settings;
  const out: string[] = [];
  out.push(`Run ${report.createdAt} on ${report.machine.cpuModel} (${report.machine.cpus} CPUs, ${mb(report.machine.totalMemoryBytes)} MB), ${report.machine.platform}, Node ${report.machine.node}.`);
  out.push(`Command: \`${report.command}\`. k = ${k}; QPS is the median of ${report.settings.passes} timed passes after one warm-up pass; single thread, one query per call unless stated.`);
  out.push('');
  out.push(mdTable(['library', 'version', 'status', 'detail'], report.libraries.map((l) => [l.library, l.version ?? '–', l.status, l.detail.replace(/\|/g, '\\|')]), ['l', 'l', 'l', 'l']));
  for (const ds of report.datasets) {
    out.push('', `### ${ds.name}`, '', `${ds.description}. ${ds.nBase.toLocaleString('en-US')} × ${ds.dim}, ${ds.nQueries} queries.`);
    const gt = ds.groundTruth;
    out.push(
      `Ground truth: ${gt.source === 'file' ? `shipped with the dataset, ${gt.spotChecked} queries spot-checked against brute force` : gt.source === 'cache' ? 'brute force, read from the cache' : 'brute force, computed in this run'}` +
        `${gt.faissFlatRecall !== null ? `; FAISS IndexFlatL2 reaches recall ${gt.faissFlatRecall.toFixed(4)} against it` : ''}.`,
    );
    out.push('', `Best single-thread QPS at recall@${k} ≥ target (configuration in small print):`, '', targetTableMarkdown(ds.summary, k));
    if (ds.queryKinds) {
      out.push('', `Recall by query kind (${ds.queryKinds.mixture} mixture queries, ${ds.queryKinds.outlier} outliers from N(0, I)), at each series' fastest configuration reaching 0.95 overall:`, '');
      const rows: string[][] = [];
      const target = ds.summary.find((r) => Math.abs(r.target - 0.95) < 1e-9);
      for (const b of target?.best ?? []) {
        if (!b.params) continue;
        const r = ds.results.find((x) => x.mode === 'single' && x.series === b.series && JSON.stringify(x.params) === JSON.stringify(b.params));
        if (r?.recallByKind) rows.push([b.series, formatParams(r.params), r.recall.toFixed(4), r.recallByKind.mixture.toFixed(4), r.recallByKind.outlier.toFixed(4)]);
      }
      if (rows.length) out.push(mdTable(['series', 'configuration', 'recall', 'mixture queries', 'outlier queries'], rows, ['l', 'l', 'r', 'r', 'r']));
    }
    out.push('', 'Builds (one thread):', '');
    out.push(
      mdTable(
        ['series', 'index', 'build s', 'memory MB', 'memory measured as'],
        ds.builds.map((b) => [
          b.series, b.index, b.buildSeconds.toFixed(1), mb(b.memory.bytes),
          b.memory.method + (b.memory.components ? ` (${Object.entries(b.memory.components).filter(([, v]) => v > 0).map(([n, v]) => `${n} ${mb(v)}`).join(', ')})` : ''),
        ]),
        ['l', 'l', 'r', 'r', 'l'],
      ),
    );
    const batch = sorted(ds.results.filter((r) => r.mode === 'batch'));
    if (batch.length) {
      out.push('', 'Batch mode (all queries in one call; reported separately, not in the plot):', '');
      const rows = batch.map((r) => {
        const speedup = r.threads > 1 ? speedupOverOneThread(r, batch) : null;
        return [r.series, formatParams(r.params), String(r.threads), r.recall.toFixed(4), int(r.qps), speedup === null ? '' : `${speedup.toFixed(2)}×`];
      });
      out.push(mdTable(['series', 'configuration', 'threads', `recall@${k}`, 'QPS', 'over 1 thread'], rows, ['l', 'l', 'r', 'r', 'r', 'r']));
      out.push('', '"over 1 thread": the median, over passes, of this pass\'s QPS over the same configuration\'s one-thread pass (timed right before or after it).');
    }
    if (ds.filtered) {
      out.push('', `Filtered search (\`--filtered\`: ${ds.filtered.index}, ${formatParams(ds.filtered.params)}, one query per call, filters prepared beforehand; recall against exact search among the admitted vectors):`, '');
      out.push(mdTable(FILTERED_HEAD(k), filteredRows(ds), ['l', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r']));
    }
    for (const s of ds.skipped) out.push('', `Skipped ${s.library}: ${s.reason}`);
    for (const n of ds.notes) out.push('', `Note: ${n}.`);
    if (plots[ds.name]) out.push('', `![recall@${k} vs QPS on ${ds.name}](${plots[ds.name]})`);
  }
  return out.join('\n') + '\n';
}
