// Writers of one index file exclude each other (issue 15): the writers' lock (src/lock.ts), save's
// refusal to overwrite a file another writer replaced (CONFLICT), ZGQIndex.update, and the removal
// of temporaries left by killed saves. The CLI race of two real `zgq add` processes is in cli.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZGQIndex } from '../src/index.js';
import { expectCodeAsync } from './helpers/expect.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { LOCK_STALE_MS, lockHolder, lockPathOf, withFileLock } from '../src/lock.js';

const DIM = 8;
const ds = clusteredGaussian({ n: 700, nQueries: 1, dim: DIM, seed: 3 });
const LOCK_MODULE = fileURLToPath(new URL('../src/lock.ts', import.meta.url));


function rows(from: number, to: number): Float32Array {
  return ds.base.slice(from * DIM, to * DIM);
}

function idsFrom(start: number, count: number): Uint32Array {
  return Uint32Array.from({ length: count }, (_, i) => start + i);
}

/** A saved index of rows [0, 500) with ids 0..499, in a fresh directory. */
async function savedIndex(): Promise<{ dir: string; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-lock-'));
  const path = join(dir, 'index.zgq');
  const index = new ZGQIndex({ dim: DIM, seed: 1 });
  await index.build(rows(0, 500), { threads: 1 });
  await index.save(path);
  return { dir, path };
}

/** A child process that holds the writers' lock of `path` until its stdin closes. */
async function holdInChild(path: string): Promise<ChildProcess> {
  const code = `import { withFileLock } from ${JSON.stringify(LOCK_MODULE)};
await withFileLock(${JSON.stringify(path)}, async () => {
  process.stdout.write('held\\n');
  await new Promise((done) => process.stdin.once('end', done).resume());
});`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (c) => reject(new Error(`lock holder exited early with ${c}`)));
  });
  return child;
}

async function release(child: ChildProcess): Promise<void> {
  const exited = new Promise((done) => child.once('exit', done));
  child.stdin!.end();
  await exited;
}

test('a lock held by another process: save fails with LOCKED naming the path and the holder, then succeeds once released', async () => {
  const { dir, path } = await savedIndex();
  try {
    const index = await ZGQIndex.load(path);
    const child = await holdInChild(path);
    try {
      const before = readFileSync(path);
      const e = await expectCodeAsync(() => index.save(path, { wait: 0 }), 'LOCKED');
      assert.ok(e.message.includes(path), e.message);
      assert.match(e.message, new RegExp(`pid ${child.pid} on host ${hostname()}`));
      assert.deepEqual(await lockHolder(path), { pid: child.pid, host: hostname(), since: (await lockHolder(path))!.since });
      // a bounded wait ends the same way
      const started = Date.now();
      await expectCodeAsync(() => index.save(path, { wait: 300 }), 'LOCKED', /waited 300 ms/);
      assert.ok(Date.now() - started >= 290);
      assert.deepEqual(readFileSync(path), before, 'nothing written');
      // a waiting writer gets the lock when the holder finishes
      const waiting = index.save(path, { wait: 20_000 });
      await new Promise((done) => setTimeout(done, 100));
      await release(child);
      await waiting;
    } finally {
      if (child.exitCode === null) await release(child);
    }
    assert.equal(await lockHolder(path), null);
    assert.ok(!existsSync(lockPathOf(path)), 'lock removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock left by a killed writer is taken over once stale; a fresh one is reported with its recorded holder', async () => {
  const { dir, path } = await savedIndex();
  try {
    const index = await ZGQIndex.load(path);
    // as a writer killed with SIGKILL leaves it: the directory and its owner record, no longer refreshed
    const lockDir = lockPathOf(path);
    mkdirSync(lockDir);
    writeFileSync(join(lockDir, 'owner.json'), JSON.stringify({ pid: 999999, host: 'elsewhere', since: '2026-01-01T00:00:00.000Z', token: 'x' }));
    await expectCodeAsync(() => index.save(path, { wait: 0 }), 'LOCKED', /pid 999999 on host elsewhere since 2026-01-01/);
    const old = new Date(Date.now() - LOCK_STALE_MS - 5000);
    utimesSync(lockDir, old, old);
    await index.save(path, { wait: 0 });
    assert.ok(!existsSync(lockDir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('save refuses (CONFLICT) to overwrite a file another writer replaced after it was loaded; update applies both', async () => {
  const { dir, path } = await savedIndex();
  try {
    const a = await ZGQIndex.load(path);
    const b = await ZGQIndex.load(path);
    await a.add(rows(500, 550), idsFrom(5000, 50));
    await a.save(path);
    await b.add(rows(550, 600), idsFrom(6000, 50));
    const e = await expectCodeAsync(() => b.save(path), 'CONFLICT');
    assert.ok(e.message.includes(path) && /another writer replaced the file/.test(e.message), e.message);
    let onDisk = await ZGQIndex.load(path);
    assert.ok(onDisk.has(5000) && !onDisk.has(6000), "a's change survives");
    // saving elsewhere is fine; a saves again on top of its own save
    await b.save(join(dir, 'b.zgq'));
    a.remove([5001]);
    await a.save(path);
    // the same change through update lands on top of a's
    await ZGQIndex.update(path, (index) => index.add(rows(550, 600), idsFrom(6000, 50)));
    onDisk = await ZGQIndex.load(path);
    assert.ok(onDisk.has(5000) && !onDisk.has(5001) && onDisk.has(6049), 'both changes present');
    assert.equal(onDisk.size, 500 + 50 - 1 + 50);
    // a file that was deleted meanwhile is written again
    rmSync(path);
    await a.save(path);
    assert.ok(existsSync(path));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('concurrent updates of one file in one process all land', async () => {
  const { dir, path } = await savedIndex();
  try {
    await Promise.all(Array.from({ length: 4 }, (_, k) => ZGQIndex.update(path, async (index) => {
      await index.add(rows(500 + 40 * k, 540 + 40 * k), idsFrom(10_000 * (k + 1), 40));
    })));
    const index = await ZGQIndex.load(path);
    assert.equal(index.size, 500 + 4 * 40);
    for (let k = 0; k < 4; k++) assert.ok(index.has(10_000 * (k + 1)) && index.has(10_000 * (k + 1) + 39), `update ${k}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('update: a missing file is IO unless create is given; a throwing fn writes nothing and releases the lock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-lock-'));
  try {
    const path = join(dir, 'new.zgq');
    await expectCodeAsync(() => ZGQIndex.update(path, () => {}), 'IO', /new\.zgq/);
    assert.deepEqual(readdirSync(dir), []);
    const made = await ZGQIndex.update(path, (index) => index.build(rows(0, 300), { threads: 1 }), { create: { dim: DIM, seed: 2 } });
    assert.equal(made.size, 300);
    assert.equal((await ZGQIndex.load(path)).size, 300);
    // with the file there, create is ignored: fn gets the stored index
    await ZGQIndex.update(path, (index) => {
      assert.equal(index.size, 300);
      index.remove([0]);
    }, { create: { dim: DIM } });
    const before = readFileSync(path);
    const boom = new Error('changed my mind');
    await assert.rejects(() => ZGQIndex.update(path, (index) => {
      index.remove([1, 2, 3]);
      throw boom;
    }), (e) => e === boom);
    assert.deepEqual(readFileSync(path), before, 'nothing written');
    assert.deepEqual(readdirSync(dir), ['new.zgq'], 'lock released, no temporaries');
    await expectCodeAsync(() => ZGQIndex.update(path, 'not a function' as never), 'INVALID_ARGUMENT', /fn must be a function/);
    await expectCodeAsync(() => ZGQIndex.update(path, () => {}, { create: { dim: 0 } }), 'INVALID_ARGUMENT', /dim/);
    await expectCodeAsync(() => ZGQIndex.update(path, () => {}, { wait: -1 }), 'INVALID_ARGUMENT', /wait/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a writer that lost its lock replaces nothing (LOCKED)', async () => {
  const { dir, path } = await savedIndex();
  try {
    const before = readFileSync(path);
    await expectCodeAsync(() => ZGQIndex.update(path, (index) => {
      index.remove([7]);
      // as if this process had stalled past the stale time and another writer had taken over
      writeFileSync(join(lockPathOf(path), 'owner.json'), JSON.stringify({ pid: 1, host: 'thief', token: 'theirs' }));
    }), 'LOCKED', /lost the writers' lock.*now held by pid 1 on host thief.*nothing was replaced/);
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('save removes the temporaries that killed saves of its path left, and only those (issue 15, item 13)', async () => {
  const { dir, path } = await savedIndex();
  try {
    const stale = Array.from({ length: 25 }, (_, i) => `index.zgq.tmp-${1000 + i}-${(0xa0b0c0d0e0f0 + i).toString(16)}`);
    const kept = ['other.zgq.tmp-1000-a0b0c0d0e0f0', 'index.zgq.bak', 'notes.txt'];
    for (const name of [...stale, ...kept]) writeFileSync(join(dir, name), new Uint8Array(4096));
    const index = await ZGQIndex.load(path);
    await index.save(path);
    assert.deepEqual(readdirSync(dir).sort(), ['index.zgq', ...kept].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('load, save and update refuse paths that are not non-empty strings with INVALID_ARGUMENT (issue 15, item 12)', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(rows(0, 100), { threads: 1 });
  for (const bad of [undefined, null, 7, '', {}]) {
    await expectCodeAsync(() => ZGQIndex.load(bad as never), 'INVALID_ARGUMENT', /path must be a non-empty file path string/);
    await expectCodeAsync(() => index.save(bad as never), 'INVALID_ARGUMENT', /path/);
    await expectCodeAsync(() => ZGQIndex.update(bad as never, () => {}), 'INVALID_ARGUMENT', /path/);
  }
});

test('withFileLock: writers in one process take turns; a missing directory is IO', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-lock-'));
  try {
    const path = join(dir, 'f');
    let inside = 0;
    let most = 0;
    await Promise.all(Array.from({ length: 5 }, () => withFileLock(path, async () => {
      most = Math.max(most, ++inside);
      await new Promise((done) => setTimeout(done, 20));
      inside--;
    })));
    assert.equal(most, 1);
    await expectCodeAsync(() => withFileLock(join(dir, 'missing', 'f'), async () => {}), 'IO', /directory does not exist/);
    await expectCodeAsync(() => withFileLock(path, async () => {}, { wait: Number.NaN }), 'INVALID_ARGUMENT', /wait/);
    // a save waiting on its own process's update says so
    await withFileLock(path, async () => {
      await expectCodeAsync(() => withFileLock(path, async () => {}, { wait: 0 }), 'LOCKED', /this process/);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
