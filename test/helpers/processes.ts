// Processes the serving tests and bench/cluster.ts start: nats-server on a free loopback port, and
// the zgq command until it says it is ready.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Debian's nats-server where it is installed, else undefined. */
export const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((p) => existsSync(p));

/** The built command line (npm run build makes it). */
export const ZGQ_CLI = fileURLToPath(new URL('../../dist/cli/zgq.js', import.meta.url));

/** A loopback port nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * nats-server on a loopback port with JetStream storing into `storeDir`, accepting connections;
 * `config` a configuration file for what has no flag (max_payload).
 */
export async function startNats(port: number, storeDir: string, config?: string): Promise<ChildProcess> {
  if (!NATS_SERVER) throw new Error('nats-server is not installed (Debian: apt-get install nats-server)');
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(config ? ['-c', config] : [])];
  const proc = spawn(NATS_SERVER, args, { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) return proc;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`nats-server did not start on port ${port}`);
}

/** Kill a process (SIGKILL) and wait for it to exit. */
export async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await gone;
}

/**
 * `zgq <args>` started, resolved once its stderr matches `ready` (with the match); rejected if it
 * exits first. `stderr()` is everything it has written so far.
 */
export async function startCli(args: string[], ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray; stderr: () => string }> {
  const child = spawn(process.execPath, [ZGQ_CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = ready.exec(text);
      if (m) resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`zgq ${args[0]} exited (${code}): ${text}`)));
  });
  return { child, match, stderr: () => text };
}
