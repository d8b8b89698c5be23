/**
 * `zgq serve`: an index file behind the HTTP API of src/serve/http.ts, or with --nats a replica of
 * a cluster's shard (src/cluster/replica.ts), until SIGINT or SIGTERM.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ZGQError, ZGQIndex, type RowPlace } from '../index.js';
import { httpServer } from '../serve/http.js';
import { int } from './commands.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--port must be an integer in [0, 65535] (0: any free port)');
  return n;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve an index file over HTTP (JSON): search, batch search, add, remove, stats, health')
    .argument('<index>', 'index file; writes are saved to it before they are acknowledged')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', port, 8080)
    .option('--read-only', 'refuse add and remove')
    .addOption(new Option('--rows <place>', "where the stored vectors live: 'memory', or 'file' (read per query; read-only)").choices(['memory', 'file']).default('memory'))
    .option('--max-batch <queries>', 'most queries in one batch request', int('--max-batch'), 10_000)
    .option('--body-limit <mib>', 'largest request body in MiB', int('--body-limit'), 64)
    .option('--nats <url>', 'serve searches over NATS instead, as a replica of --name (needs @nats-io/transport-node)')
    .option('--name <index>', 'with --nats: the index\'s name in the cluster')
    .action(async (path: string, o) => {
      if (o.nats !== undefined && o.name === undefined) throw new ZGQError('INVALID_ARGUMENT', '--nats needs --name <index>: the name clients connect to');
      const rows = o.rows as RowPlace;
      const index = await ZGQIndex.load(path, { rows });
      let stop: () => Promise<void>;
      if (o.nats !== undefined) {
        const { Replica } = await import('../cluster/replica.js').catch((err: unknown) => {
          throw new ZGQError('UNSUPPORTED_PLATFORM', `zgq serve --nats needs the package @nats-io/transport-node (npm install @nats-io/transport-node): ${err instanceof Error ? err.message : String(err)}`);
        });
        const replica = await Replica.start(index, { servers: o.nats, name: o.name });
        process.stderr.write(`zgq: serving ${path} (${index.size} vectors, ${index.dim} dimensions) as a replica of '${o.name}' on ${o.nats}\n`);
        stop = () => replica.close();
      } else {
        const readOnly = !!o.readOnly || rows !== 'memory';
        const app = httpServer(index, { path: readOnly ? null : path, readOnly, maxBatch: o.maxBatch, bodyLimit: o.bodyLimit * 1024 * 1024 });
        const address = await app.listen({ host: o.host, port: o.port });
        process.stderr.write(`zgq: serving ${path} (${index.size} vectors, ${index.dim} dimensions${readOnly ? ', read-only' : ''}) on ${address}\n`);
        stop = () => app.close();
      }
      // finish the requests in flight (a write's save among them), then leave; the handlers stay
      // registered (the file lock's signal-exit would otherwise see none left and kill the process)
      await new Promise<void>((resolve) => {
        process.on('SIGINT', () => resolve());
        process.on('SIGTERM', () => resolve());
      });
      await stop();
      index.close();
      process.stderr.write('zgq: stopped\n');
    });
}
