/**
 * Progress output for long CLI work: a bar on a terminal, periodic plain lines otherwise (CI logs).
 */
import cliProgress from 'cli-progress';
import type { BuildPhase } from '../index.js';

/** A bar for the phases of ZGQIndex.build; call `stop` when the build returns. */
export function buildProgress(stream: NodeJS.WriteStream = process.stderr): { onProgress: (phase: BuildPhase, fraction: number) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      format: 'build {phase} [{bar}] {percentage}% | {duration_formatted}',
      stream,
      noTTYOutput: true,
      notTTYSchedule: 2000,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  // zones and PQ are short; the graph is most of the build time
  const weights: Record<BuildPhase, [number, number]> = { zones: [0, 10], pq: [10, 25], graph: [25, 95], tune: [95, 100], done: [100, 100] };
  return {
    onProgress(phase, fraction) {
      const [from, to] = weights[phase];
      const value = Math.round(from + (to - from) * fraction);
      if (!started) {
        bar.start(100, value, { phase });
        started = true;
      } else bar.update(value, { phase });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** A bar for work reported as a fraction in [0, 1] (e.g. ZGQIndex.add). */
export function fractionProgress(label: string, stream: NodeJS.WriteStream = process.stderr): { onProgress: (fraction: number) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {duration_formatted}`, stream, noTTYOutput: true, notTTYSchedule: 2000, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress(fraction) {
      const value = Math.round(100 * fraction);
      if (!started) {
        bar.start(100, value);
        started = true;
      } else bar.update(value);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
