// siftsmall from ../shared/data beside the checkout, or a skipped test when it is not there.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { readFvecs, readIvecs } from '../../src/data/vecs.js';

const SIFT_DIR = fileURLToPath(new URL('../../../shared/data/siftsmall/', import.meta.url));

/** The base vectors, queries and shipped ground truth; null (and the test skipped) without the data. */
export async function loadSiftsmall(t: TestContext) {
  if (!existsSync(SIFT_DIR)) {
    t.skip(`siftsmall not found at ${SIFT_DIR}`);
    return null;
  }
  return {
    base: await readFvecs(join(SIFT_DIR, 'siftsmall_base.fvecs')),
    queries: await readFvecs(join(SIFT_DIR, 'siftsmall_query.fvecs')),
    gt: await readIvecs(join(SIFT_DIR, 'siftsmall_groundtruth.ivecs')),
  };
}
