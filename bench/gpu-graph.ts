// The graph a GPU build links from its candidates against the CPU build's searched graph, searched
// alike (the exact walk, nProbe 4, ef 16 / 32 / 64 / 128, one thread), on clustered or
// embedding-like vectors, for candidate settings given as [zones, perDegree, alpha?] triples.
//   node --import tsx bench/gpu-graph.ts clustered|embedding n '[[4,2],[8,2],[12,2],[4,4],[4,2,1.4]]' [--twin]
// Needs a WebGPU adapter (here SwiftShader: LD_LIBRARY_PATH=/usr/lib/chromium
// VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json). --twin replaces the GPU's range scan
// by its TypeScript twin (src/kernels/reference/range-top-k.ts, the same ids up to ties, tested by
// test/gpu.test.ts), several times faster than SwiftShader on two cores; recall is what it measures.
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian, embeddingLike } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { GpuRowScan } from '../src/gpu/scan.js';
import { graphCandidates } from '../src/gpu/neighbours.js';
import { rangeTopK } from '../src/kernels/reference/range-top-k.js';

const [kind, size, settings] = process.argv.slice(2);
const n = Number(size ?? 20000);
const variants = JSON.parse(settings ?? '[[8,2]]') as [number, number, number?][];
if (process.argv.includes('--twin')) {
  type Twinned = { shape: { dim: number; half: boolean; metric: number }; twinRows?: Float32Array | Uint16Array };
  const scan = GpuRowScan.prototype as unknown as Record<string, unknown>;
  const write = scan.write as (this: Twinned, rows: Float32Array | Uint16Array, from: number, to: number) => void;
  scan.write = function (this: Twinned, rows: Float32Array | Uint16Array, from: number, to: number) {
    this.twinRows = rows;
    write.call(this, rows, from, to);
  };
  scan.scan = async function (this: Twinned, q: Float32Array, nq: number, ranges: Uint32Array, per: number, k: number, removed: Uint8Array | null) {
    return rangeTopK(this.twinRows!, this.shape.half, this.shape.dim, this.shape.metric, q, nq, ranges, per, k, removed);
  };
}
const embedding = kind === 'embedding';
const dim = embedding ? 384 : 128;
const metric = embedding ? 'cosine' : 'l2';
const nq = 500;
const ds = embedding ? embeddingLike({ n, nQueries: nq, dim, seed: 7 }) : clusteredGaussian({ n, nQueries: nq, dim, seed: 7 });
const truth = bruteForceKnn(ds.base, n, ds.queries, nq, dim, 10, metric).ids;

async function recalls(device: 'cpu' | 'gpu', alpha?: number): Promise<string> {
  const index = new ZGQIndex({ dim, seed: 1, metric, ...(alpha ? { alpha } : {}) });
  await index.build(ds.base, { threads: 2, device });
  const used = index.stats().device;
  if (device === 'gpu' && (used?.ran !== 'gpu' || used.reason)) throw new Error(`the build ran on the CPU: ${used?.reason}`);
  const out: string[] = [];
  for (const ef of [16, 32, 64, 128]) {
    const r = await index.searchBatch(ds.queries, 10, { ef, nProbe: 4, traversal: 'exact', threads: 1 });
    out.push(recallAtK(r.ids, truth, nq, 10).toFixed(4));
  }
  return out.join(' / ');
}

console.log(`${n} x ${dim} ${kind} (${metric}), ${nq} queries, recall@10 at ef 16 / 32 / 64 / 128`);
console.log(`CPU build: ${await recalls('cpu')}`);
for (const [zones, perDegree, alpha] of variants) {
  graphCandidates.zones = zones;
  graphCandidates.perDegree = perDegree;
  console.log(`GPU candidates, ${zones} zones, ${perDegree} x degree${alpha ? `, alpha ${alpha}` : ''}: ${await recalls('gpu', alpha)}`);
}
process.exit(0);
