/**
 * `zgq serve`: an index file behind the HTTP API of src/serve/http.ts, or with --nats a replica of
 * shards of a published cluster index and of each version published after it (src/cluster/follow.ts),
 * until SIGINT or SIGTERM.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ZGQError, ZGQIndex, type RowPlace } from '../index.js';
import { httpServer } from '../serve/http.js';
import { int } from './commands.js';
import { clusterModules } from './cluster.js';

function shardList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((part) => !/^\d+$/.test(part))) throw new InvalidArgumentError('--shard must be shard numbers separated by commas, e.g. 0 or 0,2');
  return parts.map(Number);
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--port must be an integer in [0, 65535] (0: any free port)');
  return n;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve an index file over HTTP (JSON): search, batch search, add, remove, stats, health; or with --nats, shards of a published cluster index')
    .argument('[index]', 'index file (HTTP); writes are saved to it before they are acknowledged')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', port, 8080)
    .option('--read-only', 'refuse add and remove')
    .addOption(new Option('--rows <place>', "where the stored vectors live: 'memory', or 'file' (read per query; read-only)").choices(['memory', 'file']).default('memory'))
    .option('--max-batch <queries>', 'most queries in one batch request', int('--max-batch'), 10_000)
    .option('--body-limit <mib>', 'largest request body in MiB', int('--body-limit'), 64)
    .option('--nats <url>', 'serve shards of the cluster index --name published on this NATS server instead (zgq cluster publish)')
    .option('--name <index>', "with --nats: the index's name in the cluster")
    .option('--shard <list>', 'with --nats: the shards to serve, e.g. 0 or 0,2 (default: all)', shardList)
    .action(async (path: string | undefined, o) => {
      let stop: () => Promise<void>;
      let close = () => {};
      let failure = new Promise<ZGQError>(() => {});
      if (o.nats !== undefined) {
        if (o.name === undefined) throw new ZGQError('INVALID_ARGUMENT', '--nats needs --name <index>: the published index to serve');
        if (path !== undefined) throw new ZGQError('INVALID_ARGUMENT', `with --nats the shards come from the cluster: publish ${path} first (zgq cluster publish ${path} --nats ${o.nats} --name ${o.name})`);
        if (o.readOnly || o.rows !== 'memory') throw new ZGQError('INVALID_ARGUMENT', '--read-only and --rows are for an index file over HTTP; a replica (--nats) holds its shards in memory and takes writes from the cluster');
        const { FollowingReplica } = await clusterModules('zgq serve --nats');
        // serves each version published from now on too: the new one beside the old, then the old stops
        const follower = await FollowingReplica.start({ servers: o.nats, name: o.name, shards: o.shard, onEvent: (m) => process.stderr.write(`zgq: ${m}\n`) });
        const { replica } = follower;
        process.stderr.write(`zgq: serving shards ${replica.shards.join(', ')} of '${o.name}' version ${replica.manifest.version} (${replica.size} vectors) on ${o.nats}\n`);
        stop = () => follower.close();
        failure = follower.failure;
      } else {
        if (path === undefined) throw new ZGQError('INVALID_ARGUMENT', 'zgq serve needs an index file, or --nats and --name');
        const rows = o.rows as RowPlace;
        const index = await ZGQIndex.load(path, { rows });
        close = () => index.close();
        const readOnly = !!o.readOnly || rows !== 'memory';
        const app = httpServer(index, { path: readOnly ? null : path, readOnly, maxBatch: o.maxBatch, bodyLimit: o.bodyLimit * 1024 * 1024 });
        const address = await app.listen({ host: o.host, port: o.port });
        process.stderr.write(`zgq: serving ${path} (${index.size} vectors, ${index.dim} dimensions${readOnly ? ', read-only' : ''}) on ${address}\n`);
        stop = () => app.close();
      }
      // finish the requests in flight (a write's save among them), then leave; the handlers stay
      // registered (the file lock's signal-exit would otherwise see none left and kill the process)
      const signalled = new Promise<null>((resolve) => {
        process.on('SIGINT', () => resolve(null));
        process.on('SIGTERM', () => resolve(null));
      });
      const failed = await Promise.race([signalled, failure]);
      await stop();
      close();
      if (failed) throw failed;
      process.stderr.write('zgq: stopped\n');
    });
}
