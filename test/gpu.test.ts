// searchBatch on the GPU (src/gpu/): the WGSL range scan against its TypeScript twin, and batches
// on the GPU against the CPU and exact truth, on the CPU through SwiftShader's Vulkan driver (which
// .ci/run's Chromium brings) in a process of its own (test/helpers/gpu-checks.ts): Dawn takes the
// driver from the environment it starts with. Then the same checks with no driver: every batch on
// the CPU, saying why. Skipped, saying so, where the webgpu package or SwiftShader is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHECKS = fileURLToPath(new URL('./helpers/gpu-checks.ts', import.meta.url));
const hasWebgpu = (() => {
  try {
    createRequire(import.meta.url).resolve('webgpu');
    return true;
  } catch {
    return false;
  }
})();

test('GPU: device is checked before anything runs, on every path', async () => {
  const { ZGQIndex } = await import('../src/index.js');
  const { expectCodeAsync } = await import('./helpers/expect.js');
  await expectCodeAsync(new ZGQIndex({ dim: 4 }).build([[1, 2, 3, 4]], { device: 'tpu' as 'gpu' }), 'INVALID_ARGUMENT');
  const untrained = new ZGQIndex({ dim: 4 });
  await expectCodeAsync(untrained.searchBatch([[1, 2, 3, 4]], 3, { device: 'tpu' as 'gpu' }), 'INVALID_ARGUMENT');
  await expectCodeAsync(untrained.searchBatch([[1, 2, 3, 4]], 0, { device: 'tpu' as 'gpu' }), 'INVALID_ARGUMENT');
  // and a batch that never reaches the GPU says so
  const index = new ZGQIndex({ dim: 4 });
  await index.build(Float32Array.from({ length: 4 * 300 }, (_, i) => Math.sin(i)), { threads: 1 });
  await index.searchBatch([[1, 2, 3, 4]], 0, { device: 'gpu' });
  assert.deepEqual(index.stats().device, { op: 'searchBatch', ran: 'cpu', adapter: null, reason: 'k = 0' });
});

async function checks(env: Record<string, string>): Promise<Record<string, any>> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHECKS], {
    env: { ...process.env, ...env }, timeout: 240_000, maxBuffer: 16 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

test('GPU: the WGSL range scan equals its twin; searchBatch on the GPU equals the CPU scan, keeps recall, skips removed rows, finds appended ones; what it cannot take runs on the CPU saying why', { timeout: 300_000 }, async (t) => {
  if (!hasWebgpu) return t.skip('the optional package webgpu is not installed');
  if (!existsSync(SWIFTSHADER)) return t.skip(`no SwiftShader Vulkan driver at ${SWIFTSHADER} (Debian: apt-get install chromium; .ci/run installs it)`);
  const r = await checks({ LD_LIBRARY_PATH: '/usr/lib/chromium', VK_ICD_FILENAMES: SWIFTSHADER });
  assert.equal(r.device.fallback, true, `SwiftShader is a software adapter: ${JSON.stringify(r.device)}`);

  // every shape (float32, binary16 of even and odd dimension, L2 and inner product, the four k
  // buckets, removed rows, empty ranges): ids equal up to ties, distances within 1e-5 relative
  assert.equal(r.kernel.length, 96);
  for (const c of r.kernel) {
    assert.equal(c.idMismatches, 0, `${c.name}: ${c.idMismatches} of ${c.compared} ids differ`);
    assert.ok(c.worstRelative <= 1e-5, `${c.name}: distance off by ${c.worstRelative}`);
  }

  // every row scanned: the CPU's exact scan of the stored rows, id for id
  assert.equal(r.scanDevice.ran, 'gpu');
  assert.equal(r.scanSame, true);
  assert.ok(r.scanDistanceWorst <= 1e-5, `scan distances off by ${r.scanDistanceWorst}`);
  // the zones scanned exactly: recall within a point of the index's own search
  assert.ok(r.recall.gpu >= 0.95 && r.recall.gpu >= r.recall.cpu - 0.01, JSON.stringify(r.recall));
  assert.equal(r.removedReturned, 0, 'removed vectors are never returned');
  assert.deepEqual(r.appendedFound, [70001, 70002, 70003]);
  assert.ok(r.inPlace >= 2, `the second add went in place (${r.inPlace} appended)`);
  assert.deepEqual(r.inPlaceFound, [70004, 70005]);
  assert.equal(r.appendedDevice.ran, 'gpu');
  assert.equal(r.aborted, 'ABORTED');

  // a build on the GPU (zone assignment, the graph's candidates): the same zones, the same recall,
  // the same index on one thread and two; small builds stay on the CPU under 'auto'
  assert.deepEqual([r.buildDevice.op, r.buildDevice.ran, r.buildDevice.reason], ['build', 'gpu', null]);
  assert.equal(r.buildSameZones, true);
  assert.ok(Math.abs(r.buildRecall.gpu - r.buildRecall.cpu) <= 0.01, JSON.stringify(r.buildRecall));
  assert.deepEqual([r.buildDevice2.ran, r.buildDevice2.reason], ['gpu', null]);
  assert.equal(r.buildThreadsSame, true, 'a GPU build links the same graph on 1 and 2 threads');
  assert.equal(r.buildAborted, 'ABORTED');
  assert.equal(r.buildPerZone.ran, 'gpu');
  assert.match(r.buildPerZone.reason, /per-zone graphs are linked on the CPU/);
  // the candidates: each node's nearest rows in its nearest zones, as the twin finds them
  assert.equal(r.candidates.compared, 1500 * 32);
  assert.equal(r.candidates.idMismatches, 0, JSON.stringify(r.candidates));
  assert.ok(r.candidates.worstRelative <= 1e-5, JSON.stringify(r.candidates));
  assert.deepEqual([r.buildAuto.op, r.buildAuto.ran], ['build', 'cpu']);
  assert.match(r.buildAuto.reason, /50000 or more/);

  const { reasons } = r;
  for (const [name, pattern] of [['filter', /filters/], ['bigK', /k = 200/], ['autoSmall', /256 or more/], ['autoSoftware', /software adapter/], ['lost', /lost/]] as const) {
    assert.equal(reasons[name].ran, 'cpu', name);
    assert.match(reasons[name].reason, pattern, name);
  }
  assert.equal(r.lostAnswered, true, 'the batch during which the device was lost is answered in full, on the CPU');
  assert.equal(reasons.afterLost.ran, 'gpu', 'the next batch opens a new device');
  // the device lost as a build's graph starts: linked on the CPU instead, the index whole
  assert.equal(reasons.lostBuild.ran, 'cpu');
  assert.match(reasons.lostBuild.reason, /zones were assigned on the GPU, the graph on the CPU: .*lost/);
  assert.ok(r.lostBuildRecall >= r.buildRecall.cpu - 0.01, `recall ${r.lostBuildRecall}`);
});

test('GPU: with no GPU driver, a batch asked for the GPU runs on the CPU and says why', { timeout: 120_000 }, async (t) => {
  if (!hasWebgpu) return t.skip('the optional package webgpu is not installed');
  // Vulkan's driver list hides every adapter on Linux only (Metal and D3D12 are not Vulkan)
  if (process.platform !== 'linux') return t.skip('hiding the GPU through VK_ICD_FILENAMES works on Linux only');
  // an ICD list naming no driver: Dawn finds no adapter, as on a machine without a GPU
  const r = await checks({ VK_ICD_FILENAMES: '/nonexistent/icd.json' });
  assert.match(r.device.reason, /no WebGPU adapter/);
  assert.equal(r.noGpu.ran, 'cpu');
  assert.match(r.noGpu.reason, /no WebGPU adapter/);
});
