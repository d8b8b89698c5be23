/**
 * Progress output of a benchmark run: status lines, and a bar for each long step (a build, a
 * sweep). Bars go to stderr so stdout carries only the result tables; without a terminal
 * cli-progress prints periodic plain lines (CI logs).
 */
import cliProgress from 'cli-progress';

/** A running bar: `update` with work done so far (of the total given at start). */
export interface ProgressTask {
  update(done: number, detail?: string): void;
  stop(): void;
}

/** Sink for everything the harness says while it works. */
export interface Progress {
  log(line: string): void;
  task(label: string, total: number): ProgressTask;
}

const NO_TASK: ProgressTask = { update() {}, stop() {} };

/** Prints nothing (tests, library use). */
export const silentProgress: Progress = { log() {}, task: () => NO_TASK };

/** Status lines and bars on `stream` (stderr by default). */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  return {
    log(line) {
      stream.write(`${line}\n`);
    },
    task(label, total) {
      const bar = new cliProgress.SingleBar(
        {
          format: `${label} [{bar}] {percentage}% {value}/{total} | {duration_formatted} {detail}`,
          stream,
          noTTYOutput: true,
          notTTYSchedule: 10000,
          hideCursor: true,
          clearOnComplete: false,
          barsize: 24,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(1, total), 0, { detail: '' });
      return {
        update(done, detail = '') {
          bar.update(done, { detail });
        },
        stop() {
          bar.stop();
        },
      };
    },
  };
}

/** Lets timers (bar redraws) run between chunks of synchronous work. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Insert rows [0, n) in chunks: `prepare(from, to)` readies a chunk untimed (converting rows to the
 * peer's format is not build time) and returns its insertion, which is timed. Updates `bar`,
 * yields between chunks and stops the bar at the end; returns the seconds spent inserting.
 */
export async function timedChunks(n: number, bar: ProgressTask, prepare: (from: number, to: number) => () => void, chunk = 2000): Promise<number> {
  let seconds = 0;
  try {
    for (let from = 0; from < n; from += chunk) {
      const to = Math.min(n, from + chunk);
      const insert = prepare(from, to);
      const t = performance.now();
      insert();
      seconds += (performance.now() - t) / 1000;
      bar.update(to);
      await yieldToEventLoop();
    }
  } finally {
    bar.stop();
  }
  return seconds;
}
