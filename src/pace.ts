/**
 * Long work on the calling thread (training, graph linking, a re-layout, a large batch) gives the
 * event loop a turn at least every 50 ms: a turn once 25 ms (pacing.everyMs) have passed at the end
 * of a step, and steps of a few to 25 ms. It stops at the next turn once the caller's
 * AbortSignal fires. Work is cut into steps by its owner; between steps it calls `step()`.
 * An aborted call throws ZGQError('ABORTED') and leaves the index as it was: every long operation
 * builds its result aside and installs it only at the end.
 */
import { ZGQError } from './errors.js';

/**
 * Work (ms) after which the next step boundary gives the event loop a turn: half the 50 ms a
 * caller may wait, the other half for the step under way. Tests set it to 0 to see a turn at
 * every step.
 * @internal
 */
export const pacing = { everyMs: 25 };

/** Let the event loop run: a macrotask, so timers and I/O callbacks get their turn. */
export function yieldToEventLoop(): Promise<void> {
  return typeof setImmediate === 'function' ? new Promise((resolve) => setImmediate(resolve)) : new Promise((resolve) => setTimeout(resolve, 0));
}

/** Check the signal of a call (before its work starts, and between steps). */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) {
    throw new ZGQError('ABORTED', `${what} was aborted${signal.reason === undefined ? '' : `: ${String(signal.reason)}`}; the index is as it was`, {
      cause: signal.reason,
    });
  }
}

/** Checks a signal and yields to the event loop between the steps of one call. */
export class Pacer {
  private last = performance.now();

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly what: string,
    private readonly everyMs = pacing.everyMs,
  ) {
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new ZGQError('INVALID_ARGUMENT', `signal must be an AbortSignal; got ${typeof signal}`);
    }
    throwIfAborted(signal, what);
  }

  /** Whether the current stretch has run its time (the caller may cut its next step smaller). */
  get due(): boolean {
    return performance.now() - this.last >= this.everyMs;
  }

  /** Between two steps: a turn of the event loop when the stretch has run its time, then the signal. */
  async step(): Promise<void> {
    if (this.due) {
      await yieldToEventLoop();
      this.last = performance.now();
    }
    throwIfAborted(this.signal, this.what);
  }
}

/**
 * Work written as a generator that yields between its steps (k-means iterations, PQ subspaces,
 * assignment chunks) runs either straight through (`runSteps`) or paced on the event loop
 * (`runPaced`): one algorithm, two drivers.
 */
export type Steps<T> = Generator<void, T, void>;

/** Run every step at once. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Run the steps with the pacer between them, calling `onStep` after each (progress reports); on
 * abort the generator's `finally` blocks still run.
 */
export async function runPaced<T>(steps: Steps<T>, pacer: Pick<Pacer, 'step'> | undefined, onStep?: () => void): Promise<T> {
  if (!pacer) return runSteps(steps);
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      onStep?.();
      await pacer.step();
    }
  } catch (e) {
    steps.return(undefined as T);
    throw e;
  }
}

/**
 * A step counter for a phase whose step count is known roughly in advance: each step reports
 * done / expected, held below 1 (the phase reports 1 itself when it ends).
 */
export function stepProgress(report: (fraction: number) => void, expected: number): () => void {
  let done = 0;
  return () => report(Math.min(0.99, ++done / Math.max(1, expected)));
}
