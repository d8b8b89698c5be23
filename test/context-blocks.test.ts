/**
 * The context blocks the kernels read in place are written by TypeScript field by field: the
 * AssemblyScript class (field order = offset) and the TypeScript table of offsets must agree, or a
 * kernel reads one array's pointer as another's. Both sides are read here as text and compared, and
 * the compiled class's size (exported by the module) shows every field is 4 bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createKernels } from '../src/kernels/wasm.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

/** The field names of `@unmanaged class name { ... }`, in order. */
function classFields(source: string, name: string): string[] {
  const body = source.match(new RegExp(`class ${name} \\{([\\s\\S]*?)\\n\\}`))?.[1];
  assert.ok(body, `class ${name} not found`);
  return [...body.matchAll(/^\s*(\w+): \w+;/gm)].map((m) => m[1]);
}

/** The names of `const name = { a: 0, b: 1, ... }`, in offset order, checking the offsets run 0..n-1. */
function offsetTable(source: string, name: string): string[] {
  const body = source.match(new RegExp(`const ${name} = \\{([\\s\\S]*?)\\}`))?.[1];
  assert.ok(body, `table ${name} not found`);
  const entries = [...body.matchAll(/(\w+): (\d+)/g)].map((m) => [m[1], Number(m[2])] as const);
  assert.deepEqual(entries.map(([, offset]) => offset).sort((a, b) => a - b), entries.map((_, i) => i), `${name}: offsets 0..n-1`);
  return [...entries].sort((a, b) => a[1] - b[1]).map(([field]) => field);
}

function fieldCount(source: string, name: string): number {
  const m = source.match(new RegExp(`const ${name} = (\\d+);`));
  assert.ok(m, `${name} not found`);
  return Number(m[1]);
}

const { k } = createKernels();
for (const [kernel, className, table, tableName, countName, bytes] of [
  ['assembly/query.ts', 'SearchContext', 'src/search.ts', 'CTX', 'CTX_FIELDS', k.SEARCH_CONTEXT_BYTES],
  ['assembly/graph.ts', 'BuildContext', 'src/graph.ts', 'BCTX', 'BCTX_FIELDS', k.BUILD_CONTEXT_BYTES],
] as const) {
  test(`${className} (${kernel}) and ${tableName} (${table}) list the same fields in the same order, 4 bytes each`, () => {
    const fields = classFields(read(kernel), className);
    assert.deepEqual(offsetTable(read(table), tableName), fields);
    assert.equal(fieldCount(read(table), countName), fields.length);
    // the compiled class is 4 bytes a field: so field i sits at offset 4 i, where the table writes it
    assert.equal(bytes.value, fields.length * 4, `${className} as compiled: ${bytes.value} bytes`);
  });
}
