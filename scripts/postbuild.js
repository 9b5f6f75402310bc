// After tsc: makes the CLI executable and replaces dist/agent/cli.js by one bundled file, so that
// `vouch deliver` (started once per message) pays for one module instead of resolving ~20.
//
// The bundle holds cli.ts and the delivery path (config, TOML parser, header reader, store, sqlite3's
// JavaScript); sqlite3's native part is loaded straight from its file instead of through `bindings`,
// which searches a dozen paths. Everything else (commands.js with commander, challenge.js with the
// mail composer) stays outside and is imported from tsc's output beside the bundle only when a
// command or a challenge needs it. Without esbuild (a production install) tsc's cli.js is kept:
// slower to start, same behaviour.

import { chmodSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}dist/agent/cli.js`;
const require = createRequire(import.meta.url);

/** Modules loaded from tsc's output at run time, never bundled: the path that needs them pays. */
const OUTSIDE = /^\.\/(commands|challenge)\.js$/;

async function bundle() {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    console.warn('postbuild: esbuild is not installed; dist/agent/cli.js stays unbundled');
    return;
  }
  // sqlite3's native module, found once here the way `bindings` would find it at every start.
  const sqliteDir = dirname(require.resolve('sqlite3/package.json'));
  const native = require('bindings')({ bindings: 'node_sqlite3.node', path: true, module_root: sqliteDir });
  const nativeRel = relative(`${root}dist/agent`, native);
  const sqliteBinding = `${sqliteDir}/lib/sqlite3-binding.js`;

  await esbuild.build({
    entryPoints: [`${root}agent/cli.ts`],
    outfile: cli,
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'warning',
    // The CommonJS code inside (sqlite3) calls require: give it the real one.
    banner: {
      js: "import { createRequire as __vouchRequire } from 'node:module';\nconst require = __vouchRequire(import.meta.url);",
    },
    plugins: [
      {
        name: 'vouch-outside',
        setup(build) {
          build.onResolve({ filter: OUTSIDE }, (args) => ({ path: args.path, external: true }));
          build.onLoad({ filter: /sqlite3-binding\.js$/ }, (args) => {
            if (args.path !== sqliteBinding) return undefined;
            // Falls back to sqlite3's own lookup when the tree was moved after the build.
            // (Names in variables: esbuild must leave both requires to run time.)
            const contents = `const native = ${JSON.stringify(`./${nativeRel}`)}, own = 'sqlite3/lib/sqlite3-binding.js';
try { module.exports = require(native); } catch { module.exports = require(own); }`;
            return { contents, loader: 'js' };
          });
        },
      },
    ],
  });
}

await bundle();
if (existsSync(cli)) chmodSync(cli, 0o755);
