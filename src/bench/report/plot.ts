/**
 * The recall@k vs QPS picture of a dataset as SVG: every measured configuration as a point, one
 * Pareto frontier line per series, QPS on a log axis. Drawn with vega-lite + vega headless (dev
 * dependencies, loaded on demand: without them the plot is skipped, not faked).
 */
import type { DatasetReport } from '../types.js';

/** Lowest recall the x axis shows. */
const X_FLOOR = 0.7;

/** Series in legend order with their colours (ZGQ first, in red). */
const SERIES_COLORS: [string, string][] = [
  ['ZGQ', '#d62728'],
  ['hnswlib-node', '#1f77b4'],
  ['usearch', '#9467bd'],
  ['FAISS HNSW16', '#ff7f0e'],
  ['FAISS IVF-Flat', '#2ca02c'],
  ['FAISS IVF-PQ+refine', '#17becf'],
  ['FAISS Flat (exact)', '#7f7f7f'],
];

/** The vega-lite spec of a dataset's single-query results. */
export function recallQpsSpec(ds: DatasetReport, k: number, targets: readonly number[]): Record<string, unknown> {
  const rows = ds.results
    .filter((r) => r.mode === 'single')
    .map((r) => ({
      series: r.series,
      recall: r.recall,
      qps: r.qps,
      frontier: r.pareto ? 'Pareto frontier' : 'other configurations',
      config: Object.entries(r.params).map(([n, v]) => `${n}=${v}`).join(' ') || '-',
    }));
  // the trade-off that matters sits at high recall: the axis starts at 0.7 (or higher when every
  // point is), and lower-recall points are left out rather than squeezing the interesting part
  const minRecall = Math.min(1, ...rows.map((r) => r.recall));
  const lo = Math.max(X_FLOOR, Math.floor((minRecall - 0.01) * 50) / 50);
  const shown = rows.filter((r) => r.recall >= lo);
  const hidden = rows.length - shown.length;
  const x = { field: 'recall', type: 'quantitative', title: `recall@${k}`, scale: { domain: [lo, 1], zero: false, nice: false } };
  const y = { field: 'qps', type: 'quantitative', title: 'queries per second (log scale)', scale: { type: 'log' } };
  // fixed colours and order, so every dataset's plot reads the same way
  const present = SERIES_COLORS.filter(([name]) => rows.some((r) => r.series === name));
  const others = [...new Set(rows.map((r) => r.series))].filter((name) => !present.some(([p]) => p === name));
  const domain = [...present.map(([name]) => name), ...others];
  const range = [...present.map(([, c]) => c), ...others.map(() => '#444444')];
  const color = { field: 'series', type: 'nominal', title: 'library / index', scale: { domain, range } };
  const shape = { field: 'series', type: 'nominal', title: 'library / index', scale: { domain } };
  const tooltip = [{ field: 'series' }, { field: 'config' }, { field: 'recall', format: '.4f' }, { field: 'qps', format: ',.0f' }];
  const frontier = "datum.frontier === 'Pareto frontier'";
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `${ds.name}: recall@${k} vs QPS`,
      subtitle: [
        `${ds.nBase.toLocaleString('en-US')} x ${ds.dim}, ${ds.nQueries} queries; single thread, one query per call; lines: Pareto frontier per series`,
        ...(hidden ? [`${hidden} configurations below recall ${lo.toFixed(2)} not shown; dashed: recall targets`] : ['dashed: recall targets']),
      ],
    },
    width: 640,
    height: 420,
    background: 'white',
    layer: [
      {
        data: { values: targets.filter((t) => t >= lo).map((t) => ({ target: t })) },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#999' },
        encoding: { x: { field: 'target', type: 'quantitative' } },
      },
      {
        data: { values: shown },
        transform: [{ filter: frontier }],
        mark: { type: 'line', strokeWidth: 2 },
        encoding: { x, y, color, order: { field: 'recall', type: 'quantitative' } },
      },
      {
        data: { values: shown },
        transform: [{ filter: frontier }],
        mark: { type: 'point', filled: true, size: 45, opacity: 1 },
        encoding: { x, y, color, shape, tooltip },
      },
      {
        data: { values: shown },
        transform: [{ filter: `!(${frontier})` }],
        mark: { type: 'point', filled: true, size: 30, opacity: 0.3 },
        encoding: { x, y, color, shape, tooltip },
      },
    ],
  };
}

/**
 * SVG text of the plot, or null with the reason when vega / vega-lite are not installed.
 */
export async function recallQpsSvg(ds: DatasetReport, k: number, targets: readonly number[]): Promise<{ svg: string } | { reason: string }> {
  let vega: typeof import('vega');
  let vl: typeof import('vega-lite');
  try {
    vega = await import('vega');
    vl = await import('vega-lite');
  } catch (err) {
    return { reason: `vega / vega-lite not installed (${err instanceof Error ? err.message.split('\n')[0] : String(err)})` };
  }
  const compiled = vl.compile(recallQpsSpec(ds, k, targets) as unknown as Parameters<typeof vl.compile>[0]);
  const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' });
  try {
    return { svg: await view.toSVG() };
  } finally {
    view.finalize();
  }
}
