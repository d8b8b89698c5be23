// The in-browser half of the WebGPU check in test/browser.test.ts: the index the test serves
// (built in Node), searched as one batch on navigator.gpu and on the CPU: every row scanned (the
// same ids), and the zones scanned; reports plain JSON through window.__results.
import { ZGQIndex } from 'zgq';

async function fetchBytes(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function run() {
  const { k } = await (await fetch('/data/meta.json')).json();
  const queries = new Float32Array((await fetchBytes('/data/queries.f32')).buffer);
  const index = ZGQIndex.fromBytes(await fetchBytes('/data/node.zgq'));
  const out = { hasGpu: 'gpu' in navigator };
  const cpuScan = await index.searchBatch(queries, k, { traversal: 'scan' });
  const gpuScan = await index.searchBatch(queries, k, { traversal: 'scan', device: 'gpu' });
  out.scanDevice = index.stats().device;
  out.scanSame = cpuScan.ids.every((id, i) => id === gpuScan.ids[i]);
  const zones = await index.searchBatch(queries, k, { device: 'gpu' });
  out.zonesDevice = index.stats().device;
  out.zones = [...zones.ids];
  return out;
}

globalThis.__results = run().catch((e) => ({ error: String(e?.stack ?? e) }));
globalThis.__results.finally(() => {
  globalThis.__done = true;
});
