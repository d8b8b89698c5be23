// Builds the package (kernels, TypeScript, browser bundle) when a clone has not been built yet, so
// `npm start` works straight after `npm ci`. The package itself builds at `npm pack` (prepack), not
// at install: a user installing it from the registry runs no install script.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url);
const outputs = ['dist/cli/zgq.js', 'dist/browser/zgq.js'];
if (!outputs.every((file) => existsSync(new URL(file, root)))) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const run = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
