/**
 * Writes a report's files: the JSON (schema in ../types.ts), one SVG plot per dataset and the
 * markdown summary that links them.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ZGQError } from '../../errors.js';
import type { BenchReport } from '../types.js';
import { recallQpsSvg } from './plot.js';
import { summaryMarkdown } from './tables.js';

/** Paths written by {@link writeReport}, and plots that could not be drawn. */
export interface WrittenReport {
  json: string;
  summary: string;
  plots: string[];
  plotErrors: string[];
}

/** File name of a dataset's plot. */
export function plotFileName(dataset: string): string {
  return `recall-qps-${dataset.replace(/[^A-Za-z0-9._-]/g, '_')}.svg`;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/**
 * Writes `bench-results.json`, `recall-qps-<dataset>.svg` and `summary.md` into `outDir`.
 * @throws ZGQError('IO') when the folder cannot be written.
 */
export async function writeReport(report: BenchReport, outDir: string): Promise<WrittenReport> {
  try {
    await mkdir(outDir, { recursive: true });
    const json = join(outDir, 'bench-results.json');
    await writeAtomic(json, JSON.stringify(report, null, 2) + '\n');
    const plots: string[] = [];
    const plotErrors: string[] = [];
    const names: Record<string, string> = {};
    for (const ds of report.datasets) {
      if (!ds.results.some((r) => r.mode === 'single')) continue;
      const got = await recallQpsSvg(ds, report.settings.k, report.settings.targets);
      if ('reason' in got) {
        plotErrors.push(`${ds.name}: ${got.reason}`);
        continue;
      }
      const file = plotFileName(ds.name);
      await writeAtomic(join(outDir, file), got.svg);
      plots.push(join(outDir, file));
      names[ds.name] = file;
    }
    const summary = join(outDir, 'summary.md');
    await writeAtomic(summary, summaryMarkdown(report, names));
    return { json, summary, plots, plotErrors };
  } catch (err) {
    if (err instanceof ZGQError) throw err;
    throw new ZGQError('IO', `cannot write the benchmark report to '${outDir}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
