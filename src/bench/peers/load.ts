/**
 * Loading an optional peer package: the module and its exact installed version, or the reason it
 * cannot be loaded (not installed, or its native addon was not built).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** A loaded package, or why not. */
export type Loaded<T> = { ok: true; mod: T; version: string } | { ok: false; reason: string };

function versionOf(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const json = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
      if (json.name === name) return json.version ?? 'unknown';
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

/** `require(name)` (the peers ship CommonJS native addons), with its version. */
export function loadPackage<T>(name: string): Loaded<T> {
  try {
    const mod = require(name) as T;
    return { ok: true, mod, version: versionOf(name) };
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const hint = /Cannot find module '([^']+)'/.exec(msg)?.[1] === name
      ? `not installed (npm install -D ${name})`
      : `cannot be loaded: ${msg} (is its install script approved in package.json allowScripts?)`;
    return { ok: false, reason: hint };
  }
}
