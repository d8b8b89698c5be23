// A build with device 'gpu' against one on the CPU (all cores; time by phase, and the two graphs'
// recall searched on the CPU), then searchBatch on the GPU against the CPU path on all of the machine's cores, and the exact brute
// force on the same GPU with the same kernel (every row scanned; a tiled brute force could be
// faster): n x 128 clustered vectors
// (paper recipe, seed 42; default 1M), nq queries (default 10,000) in one batch, recall@10 against
// exact truth. The index keeps float32 rows, so the GPU's full scan is the exact truth itself
// (checked against a CPU brute force on the first 100 queries). The GPU side sweeps nProbe, the CPU
// side ef; each reports the fastest setting reaching recall@10 0.95 and 0.99. Prints a markdown
// summary and writes it, with the JSON, under the output folder.
//   node --import tsx bench/gpu.ts [n] [nq] [passes] [out folder, default bench/results-gpu]
// Made to run on a machine with a GPU (../shared/gpu/README.md); small n runs here on SwiftShader:
//   LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node --import tsx bench/gpu.ts 5000 200 1
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { median } from '../src/bench/metrics.js';
import { gpuDevice } from '../src/gpu/webgpu.js';

const n = Number(process.argv[2] ?? 1_000_000);
const nq = Number(process.argv[3] ?? 10_000);
const passes = Number(process.argv[4] ?? 3);
const outDir = process.argv[5] ?? join(import.meta.dirname, 'results-gpu');
const dim = 128;
const K = 10;
const TARGETS = [0.95, 0.99];
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

const gpu = await gpuDevice();
if (!gpu.ok) throw new Error(`no GPU: ${gpu.reason}`);
log(`GPU: ${gpu.adapter}${gpu.fallback ? ' (software)' : ''}; CPU: ${cpus().length} x ${cpus()[0]?.model}`);

const ds = clusteredGaussian({ n, nQueries: nq, dim, seed: 42, outlierFraction: 0.3 });

/** An index built with `device` on every core: its seconds in all and by phase. */
async function built(device: 'cpu' | 'gpu'): Promise<{ index: ZGQIndex; seconds: number; phases: Record<string, number>; ran: string }> {
  const index = new ZGQIndex({ dim, seed: 42, storage: 'float32' });
  const phases: Record<string, number> = {};
  let phase = '';
  let since = performance.now();
  const start = since;
  await index.build(ds.base, {
    device,
    onProgress: (next) => {
      if (next === phase) return;
      const now = performance.now();
      if (phase) phases[phase] = (phases[phase] ?? 0) + (now - since) / 1000;
      phase = next;
      since = now;
    },
  });
  const used = index.stats().device;
  const ran = device === 'cpu' ? 'cpu' : used?.ran === 'gpu' && !used.reason ? 'gpu' : `cpu (${used?.reason})`;
  log(`built ${n} x ${dim} with device ${device} (ran: ${ran}) in ${((performance.now() - start) / 1000).toFixed(1)} s: ${JSON.stringify(phases)}`);
  return { index, seconds: (performance.now() - start) / 1000, phases, ran };
}
const onCpu = await built('cpu');
const onGpu = await built('gpu');
const { index } = onCpu;
const buildSeconds = onCpu.seconds;

/** Median seconds of `passes` runs of one batch, and its ids. */
async function timed(options: Record<string, unknown>): Promise<{ seconds: number; ids: Uint32Array; ran: string }> {
  const seconds: number[] = [];
  let ids: Uint32Array = new Uint32Array(0);
  await index.searchBatch(ds.queries.subarray(0, Math.min(nq, 256) * dim), K, options); // warm-up: uploads, pipelines, workers
  for (let p = 0; p < passes; p++) {
    const start = performance.now();
    ids = (await index.searchBatch(ds.queries, K, options)).ids;
    seconds.push((performance.now() - start) / 1000);
  }
  const used = index.stats().device;
  return { seconds: median(seconds), ids, ran: used?.ran === 'gpu' ? 'gpu' : `cpu${used?.reason ? ` (${used.reason})` : ''}` };
}

// the exact brute force on the GPU, which is the truth for float32 rows
const brute = await timed({ traversal: 'scan', device: 'gpu' });
if (brute.ran !== 'gpu') throw new Error(`the brute force ran on ${brute.ran}`);
const truth = brute.ids;
const check = bruteForceKnn(ds.base, n, ds.queries.subarray(0, 100 * dim), 100, dim, K).ids;
const truthCheck = recallAtK(truth.subarray(0, 100 * K), check, 100, K);
log(`GPU brute force: ${(nq / brute.seconds).toFixed(0)} QPS; against the CPU's exact truth on 100 queries: ${truthCheck.toFixed(4)}`);

interface Point { side: string; setting: Record<string, unknown>; recall: number; qps: number }
const points: Point[] = [];
for (const nProbe of [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128]) {
  const r = await timed({ nProbe, device: 'gpu' });
  points.push({ side: 'gpu', setting: { nProbe }, recall: recallAtK(r.ids, truth, nq, K), qps: nq / r.seconds });
  log(`GPU nProbe ${nProbe}: recall ${points.at(-1)!.recall.toFixed(4)}, ${points.at(-1)!.qps.toFixed(0)} QPS`);
  if (points.at(-1)!.recall >= 0.995) break;
}
for (const ef of [16, 24, 32, 48, 64, 96, 128, 192, 256]) {
  const r = await timed({ ef, device: 'cpu' });
  points.push({ side: 'cpu', setting: { ef }, recall: recallAtK(r.ids, truth, nq, K), qps: nq / r.seconds });
  log(`CPU ef ${ef}: recall ${points.at(-1)!.recall.toFixed(4)}, ${points.at(-1)!.qps.toFixed(0)} QPS`);
  if (points.at(-1)!.recall >= 0.995) break;
}

// the two builds' graphs searched alike on the CPU (the exact walk, the CPU-built index's nProbe)
const graphs: { ef: number; cpuBuilt: number; gpuBuilt: number }[] = [];
for (const ef of [16, 32, 64, 128]) {
  const options = { ef, traversal: 'exact', nProbe: Math.max(16, Math.ceil(index.stats().zones / 32)) } as const; // the build's default nProbe
  const recall = async (built: ZGQIndex) => recallAtK((await built.searchBatch(ds.queries, K, options)).ids, truth, nq, K);
  graphs.push({ ef, cpuBuilt: await recall(index), gpuBuilt: await recall(onGpu.index) });
  log(`ef ${ef}, exact walk: recall CPU-built ${graphs.at(-1)!.cpuBuilt.toFixed(4)}, GPU-built ${graphs.at(-1)!.gpuBuilt.toFixed(4)}`);
}

const best = (side: string, target: number) =>
  points.filter((p) => p.side === side && p.recall >= target).sort((a, b) => b.qps - a.qps)[0];
const lines = [
  `# searchBatch on the GPU: ${n} x ${dim} clustered (paper recipe, seed 42), ${nq} queries in one batch, k = ${K}, medians of ${passes} passes`,
  '',
  `GPU: ${gpu.adapter}${gpu.fallback ? ' (software adapter)' : ''}. CPU: ${cpus().length} x ${cpus()[0]?.model}. Index built on the CPU in ${buildSeconds.toFixed(1)} s.`,
  `Exact brute force on the GPU: ${(nq / brute.seconds).toFixed(0)} QPS (agrees with the CPU's exact truth on 100 queries: ${truthCheck.toFixed(4)}).`,
  '',
  '| build | seconds | zones | pq | graph | tune | GPU / CPU |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...[['CPU (all cores)', onCpu], [`device 'gpu' (ran: ${onGpu.ran})`, onGpu]].map(([name, b]) => {
    const r = b as typeof onCpu;
    const p = (phase: string) => (r.phases[phase] ?? 0).toFixed(1);
    return `| ${name as string} | ${r.seconds.toFixed(1)} | ${p('zones')} | ${p('pq')} | ${p('graph')} | ${p('tune')} | ${(onCpu.seconds / r.seconds).toFixed(2)}× |`;
  }),
  '',
  `Recall@10 searched alike on the CPU (exact walk), ef ${graphs.map((g) => g.ef).join(' / ')}: GPU-built ${graphs.map((g) => g.gpuBuilt.toFixed(4)).join(' / ')}; CPU-built ${graphs.map((g) => g.cpuBuilt.toFixed(4)).join(' / ')}.`,
  '',
  '| recall@10 | GPU: setting, QPS | CPU (all cores): setting, QPS | GPU / CPU | GPU / brute force |',
  '| --- | --- | --- | ---: | ---: |',
  ...TARGETS.map((target) => {
    const g = best('gpu', target);
    const c = best('cpu', target);
    const cell = (p: Point | undefined) => (p ? `${JSON.stringify(p.setting)}, ${p.qps.toFixed(0)}` : 'not reached');
    const ratio = g && c ? `${(g.qps / c.qps).toFixed(2)}×` : '-';
    const overBrute = g ? `${(g.qps / (nq / brute.seconds)).toFixed(2)}×` : '-';
    return `| ${target} | ${cell(g)} | ${cell(c)} | ${ratio} | ${overBrute} |`;
  }),
];
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'summary.md'), `${lines.join('\n')}\n`);
writeFileSync(join(outDir, 'gpu.json'), JSON.stringify({ n, nq, dim, passes, adapter: gpu.adapter, fallback: gpu.fallback, builds: { cpu: { seconds: onCpu.seconds, phases: onCpu.phases }, gpu: { seconds: onGpu.seconds, phases: onGpu.phases, ran: onGpu.ran } }, graphs, bruteQps: nq / brute.seconds, truthCheck, points }, null, 1));
console.log(lines.join('\n'));
process.exit(0);
