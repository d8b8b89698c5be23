// How long readVectorFile takes per format on the same vectors: .npy, JSON lines, CSV, Parquet
// (list<float>, Snappy, row groups of 10,000) and Arrow IPC (fixed-size list<float32>), written
// here from one seeded set; the median of --passes reads, in turn so that drift hits every format.
//
//   node --import tsx bench/read-files.ts [--n 100000] [--dim 128] [--passes 5]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Field, FixedSizeList, Float32, Table, tableToIPC, vectorFromArray } from 'apache-arrow';
import { parquetWriteFile } from 'hyparquet-writer';
import { dump } from 'npyjs';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { readVectorFile } from '../src/data/files.js';
import { median } from '../src/bench/metrics.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '100000' }, dim: { type: 'string', default: '128' }, passes: { type: 'string', default: '5' } } });
const n = Number(values.n);
const dim = Number(values.dim);
const passes = Number(values.passes);
const { base } = clusteredGaussian({ n, nQueries: 1, dim, seed: 1 });
const rows = Array.from({ length: n }, (_, i) => Array.from(base.subarray(i * dim, (i + 1) * dim)));

const dir = await mkdtemp(join(tmpdir(), 'zgq-read-'));
const files: Record<string, string> = {
  npy: join(dir, 'v.npy'),
  'JSON lines': join(dir, 'v.jsonl'),
  CSV: join(dir, 'v.csv'),
  Parquet: join(dir, 'v.parquet'),
  Arrow: join(dir, 'v.arrow'),
};
await writeFile(files.npy, Buffer.from(dump(base, [n, dim]) as ArrayBuffer));
await writeFile(files['JSON lines'], rows.map((r) => JSON.stringify(r)).join('\n'));
await writeFile(files.CSV, rows.map((r) => r.join(',')).join('\n'));
parquetWriteFile({
  filename: files.Parquet,
  columnData: [{ name: 'embedding', data: rows }],
  schema: [
    { name: 'root', num_children: 1 },
    { name: 'embedding', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', type: 'FLOAT', repetition_type: 'REQUIRED' },
  ],
  rowGroupSize: 10_000,
});
const column = vectorFromArray(rows.map((r) => Float32Array.from(r)), new FixedSizeList(dim, new Field('item', new Float32(), false)));
await writeFile(files.Arrow, tableToIPC(new Table({ embedding: column }), 'file'));

const times: Record<string, number[]> = Object.fromEntries(Object.keys(files).map((k) => [k, []]));
for (let p = 0; p < passes; p++) {
  for (const [format, path] of Object.entries(files)) {
    const t = performance.now();
    const r = await readVectorFile(path);
    times[format].push(performance.now() - t);
    if (r.n !== n || r.dim !== dim) throw new Error(`${format}: read ${r.n} x ${r.dim}`);
  }
}
console.log(`# readVectorFile, ${n} x ${dim} clustered float32 (seed 1), median of ${passes}\n\n| format | read |\n| --- | --- |`);
for (const format of Object.keys(files)) console.log(`| ${format} | ${(median(times[format]) / 1000).toFixed(2)} s |`);
await rm(dir, { recursive: true, force: true });
