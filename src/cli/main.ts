#!/usr/bin/env node
/**
 * The `zgq` command line. Errors the user can act on (ZGQError, system errors) print one line and
 * exit 1; ZGQ_DEBUG=1 shows the stack of system errors.
 *
 * First contact (issue 17): a bare `zgq` prints the help to stdout and exits 0 (nothing went
 * wrong; the demo takes 20 s of CPU and runs only when named, as `npm start` does); an unknown
 * command prints an error naming it, the nearest command when one is close, and the help, and
 * exits 1; `-V` / `--version` print the version from package.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ZGQError } from '../errors.js';
import { packageRoot } from '../bench/paths.js';
import { runDemo } from './demo.js';
import { registerBench } from './bench.js';
import { registerIndexCommands, traversalOption } from './commands.js';
import { registerCollectionCommands } from './collection.js';
import { registerServe } from './serve.js';
import { registerClusterCommands } from './cluster.js';

function int(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

/** The version in ZGQ's package.json, read at run time (a JSON import would copy it under dist/, which is not shipped). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown'; // a copy without its package.json still runs; only --version is the poorer
  }
}

/** The `zgq` program with every command registered; parse argv with it. */
export function createProgram(): Command {
  const program = new Command('zgq')
    .description('ZGQ approximate-nearest-neighbour index')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError();
  registerIndexCommands(program);
  registerCollectionCommands(program);
  registerServe(program);
  registerClusterCommands(program);
  registerBench(program);
  // last in the help: the commands for the user's own files come first
  program
    .command('demo')
    .description('build an index over built-in synthetic data and report recall@10 and QPS')
    .option('--n <count>', 'base vectors', int('--n'), 100000)
    .option('--dim <dim>', 'dimension', int('--dim'), 128)
    .option('--queries <count>', 'queries', int('--queries'), 1000)
    .option('-k, --k <k>', 'neighbours per query', int('--k'), 10)
    .option('--seed <seed>', 'data and index seed', int('--seed'), 42)
    .option('--ef <ef>', 'search beam width', int('--ef'))
    .option('--n-probe <zones>', 'zones entered per query', int('--n-probe'))
    .option('--rerank <factor>', 'exact re-rank factor', int('--rerank'))
    .addOption(traversalOption())
    .action(async (o) => {
      await runDemo({ n: o.n, dim: o.dim, queries: o.queries, k: o.k, seed: o.seed, ef: o.ef, nProbe: o.nProbe, rerank: o.rerank, traversal: o.traversal });
    });
  return program;
}

async function main(): Promise<void> {
  const program = createProgram();
  if (process.argv.length <= 2) {
    // commander would print the help to stderr and exit 1; asking for nothing is not an error
    program.outputHelp();
    return;
  }
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof ZGQError) {
      process.stderr.write(`zgq: ${err.message} (${err.code})\n`);
      process.exit(1);
    }
    // system errors (a missing file, a full disk) are the user's to fix too: one line, no trace
    if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && !process.env.ZGQ_DEBUG) {
      process.stderr.write(`zgq: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

await main();
