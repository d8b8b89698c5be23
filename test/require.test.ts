// CommonJS users: require('zgq') loads the built package on Node >= 20.19 (require of ES modules),
// and the index it returns builds and searches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
const supported = major > 20 || (major === 20 && minor >= 19);

test("require('zgq') loads the package from CommonJS", { skip: supported ? false : `Node ${process.versions.node} cannot require ES modules (20.19+ can)` }, async () => {
  const script = `
    const { ZGQIndex, NO_ID } = require(${JSON.stringify(ENTRY)});
    const dim = 8, n = 300;
    const x = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i));
    const index = new ZGQIndex({ dim, seed: 1 });
    index.build(x).then(() => {
      const hit = index.search(x.subarray(5 * dim, 6 * dim), 1);
      console.log(JSON.stringify({ id: hit.ids[0], none: NO_ID }));
    });
  `;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['-e', script], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  assert.deepEqual(JSON.parse(out), { id: 5, none: 0xffffffff });
});
