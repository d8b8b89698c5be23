/**
 * Runtime check of a parsed `bench-results.json` against the schema in ./types.ts, for readers of
 * the JSON (and the tests): returns every violation found, as `path: problem` strings.
 */
import { BENCH_SCHEMA, BENCH_SCHEMA_VERSION } from './types.js';

type Check = (value: unknown, path: string, errors: string[]) => void;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const num: Check = (v, p, e) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) e.push(`${p}: expected a finite number, got ${JSON.stringify(v)}`);
};
const str: Check = (v, p, e) => {
  if (typeof v !== 'string') e.push(`${p}: expected a string, got ${JSON.stringify(v)}`);
};
const bool: Check = (v, p, e) => {
  if (typeof v !== 'boolean') e.push(`${p}: expected a boolean, got ${JSON.stringify(v)}`);
};
const nullable = (c: Check): Check => (v, p, e) => {
  if (v !== null) c(v, p, e);
};
const oneOf = (...values: unknown[]): Check => (v, p, e) => {
  if (!values.includes(v)) e.push(`${p}: expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v)}`);
};
const array = (c: Check): Check => (v, p, e) => {
  if (!Array.isArray(v)) e.push(`${p}: expected an array`);
  else v.forEach((x, i) => c(x, `${p}[${i}]`, e));
};
const record = (c: Check): Check => (v, p, e) => {
  if (!isObj(v)) e.push(`${p}: expected an object`);
  else for (const [key, x] of Object.entries(v)) c(x, `${p}.${key}`, e);
};
/** A field that may be left out (checked when present). */
const optional = (c: Check): Check => Object.assign((v: unknown, p: string, e: string[]) => c(v, p, e), { optional: true });
const obj = (shape: Record<string, Check>): Check => (v, p, e) => {
  if (!isObj(v)) {
    e.push(`${p}: expected an object`);
    return;
  }
  for (const [key, c] of Object.entries(shape)) {
    if (key in v) c(v[key], `${p}.${key}`, e);
    else if (!('optional' in c)) e.push(`${p}.${key}: missing`);
  }
};
const fraction: Check = (v, p, e) => {
  num(v, p, e);
  if (typeof v === 'number' && (v < 0 || v > 1)) e.push(`${p}: expected a value in [0, 1], got ${v}`);
};

const library = oneOf('zgq', 'hnswlib-node', 'usearch', 'faiss');

const result = obj({
  library, series: str, index: str, params: record(num), mode: oneOf('single', 'batch'), threads: num,
  recall: fraction, recallByKind: nullable(obj({ mixture: fraction, outlier: fraction })),
  qps: num, passQps: array(num), latencyUs: nullable(obj({ mean: num, p50: num, p99: num })), pareto: bool,
});

const dataset = obj({
  name: str, description: str, nBase: num, nQueries: num, dim: num, metric: oneOf('l2'),
  groundTruth: obj({ source: oneOf('file', 'computed', 'cache'), path: nullable(str), depth: num, spotChecked: num, faissFlatRecall: nullable(fraction) }),
  queryKinds: nullable(obj({ mixture: num, outlier: num })),
  builds: array(obj({
    library, series: str, index: str, buildSeconds: num, buildThreads: num,
    memory: obj({ bytes: num, method: str, components: nullable(record(num)) }),
  })),
  skipped: array(obj({ library, reason: str })),
  notes: array(str),
  results: array(result),
  summary: array(obj({
    target: fraction,
    best: array(obj({ series: str, library, qps: nullable(num), recall: nullable(fraction), params: nullable(record(num)), maxRecall: fraction })),
    ratios: obj({ 'hnswlib-node': nullable(num), usearch: nullable(num) }),
  })),
  filtered: optional(obj({
    index: str, params: record(num),
    rows: array(obj({
      filter: oneOf('none', 'uncorrelated', 'anti-correlated'), selectivity: fraction, queries: num, storage: oneOf('float16', 'float32'),
      recall: fraction, qps: num, passQps: array(num),
      outside: num, short: num,
    })),
  })),
});

const report = obj({
  schema: oneOf(BENCH_SCHEMA),
  version: oneOf(BENCH_SCHEMA_VERSION),
  createdAt: str,
  command: str,
  machine: obj({ cpuModel: str, cpus: num, totalMemoryBytes: num, platform: str, node: str, openblasCoretype: nullable(str) }),
  settings: obj({ k: num, passes: num, quick: bool, minQueriesPerPass: num, batchThreads: array(num), targets: array(fraction) }),
  libraries: array(obj({ library, status: oneOf('ok', 'missing', 'failed'), version: nullable(str), detail: str })),
  datasets: array(dataset),
});

/** Violations of the report schema in `value` (empty when it conforms). */
export function validateReport(value: unknown): string[] {
  const errors: string[] = [];
  report(value, '$', errors);
  return errors;
}
