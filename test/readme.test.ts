// The README's TypeScript blocks run: the example and the blocks that continue it, in order, as one
// script against this checkout (`from 'zgq'` pointed at src/index.ts), in a temporary directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const INDEX = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const LANGCHAIN = fileURLToPath(new URL('../src/langchain.ts', import.meta.url));
/** tsx's loader by URL: the script runs from a temporary directory, where 'tsx' does not resolve. */
const TSX = import.meta.resolve('tsx');

/** The ```ts blocks of the README, in order. */
function tsBlocks(): string[] {
  const text = readFileSync(README, 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

test("the README's TypeScript blocks run as one script", async () => {
  const blocks = tsBlocks();
  assert.ok(blocks.length >= 3, `found ${blocks.length} blocks`);
  const script = blocks.join('\n').replaceAll("from 'zgq'", `from ${JSON.stringify(INDEX)}`).replaceAll("from 'zgq/langchain'", `from ${JSON.stringify(LANGCHAIN)}`)
    // the temporary directory has no node_modules: this checkout's copies of the packages the blocks import
    .replace(/from '(@langchain\/core\/[a-z]+)'/g, (_, name: string) => `from ${JSON.stringify(import.meta.resolve(name))}`) + "\nconsole.log('README OK');\n";
  const dir = mkdtempSync(join(tmpdir(), 'zgq-readme-'));
  try {
    writeFileSync(join(dir, 'readme.mts'), script);
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', TSX, join(dir, 'readme.mts')], { cwd: dir, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout));
    });
    assert.match(out, /README OK/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
