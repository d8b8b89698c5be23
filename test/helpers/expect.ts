// Assertions on the typed errors ZGQ throws: the code, one line of message, and the pattern it names.
import assert from 'node:assert/strict';
import { ZGQError, type ZGQErrorCode } from '../../src/index.js';

function check(thrown: unknown, code: ZGQErrorCode, pattern?: RegExp): ZGQError {
  if (!(thrown instanceof ZGQError)) assert.fail(`expected ZGQError ${code}, got ${String(thrown)}\n${(thrown as Error | undefined)?.stack ?? ''}`);
  assert.equal(thrown.code, code, thrown.message);
  if (pattern) assert.match(thrown.message, pattern);
  return thrown;
}

/** fn throws a ZGQError with this code (and a message matching pattern); returns it. */
export function expectCode(fn: () => unknown, code: ZGQErrorCode, pattern?: RegExp): ZGQError {
  try {
    fn();
  } catch (e) {
    return check(e, code, pattern);
  }
  assert.fail(`expected ZGQError ${code}, nothing was thrown`);
}

/** The promise (or fn's) rejects with a ZGQError with this code; returns it. */
export async function expectCodeAsync(work: Promise<unknown> | (() => Promise<unknown>), code: ZGQErrorCode, pattern?: RegExp): Promise<ZGQError> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (e) {
    return check(e, code, pattern);
  }
  assert.fail(`expected ZGQError ${code}, nothing was thrown`);
}
