// After tsc: builds the file `vouch deliver` runs. qmail starts one process per message, so the
// budget is a few milliseconds above `node -e 0`, and three things would each spend it:
//  - Node's ES module loader: dist/agent/cli.js becomes a symlink to launch.cjs, a CommonJS file,
//    so Node never starts it on the delivery path;
//  - resolving and reading ~20 modules: esbuild puts main.ts, the delivery path and its libraries
//    (TOML parser, sqlite3's JavaScript) into one file, cli.bundle.cjs; sqlite3's native part is
//    loaded straight from its file instead of through `bindings`, which searches a dozen paths;
//  - compiling that code: launch.cjs runs the bundle with V8's code cache, cli.bundle.cache,
//    made here by one real delivery in a throwaway home.
// commands.js (commander and every other command) and challenge.js (templates, mail composer) stay
// outside the bundle, loaded from tsc's output only by the paths that need them. Without esbuild
// (an install without dev dependencies) launch.cjs runs tsc's main.js: slower, same behaviour.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist', 'agent');
const cli = join(out, 'cli.js');
const launch = join(out, 'launch.cjs');
const bundleFile = join(out, 'cli.bundle.cjs');
const cacheFile = join(out, 'cli.bundle.cache');
const require = createRequire(import.meta.url);

/** Modules imported at run time from tsc's output beside the bundle, never bundled. */
const OUTSIDE = ['commands', 'challenge'];

function linkCli() {
  if (!existsSync(launch)) throw new Error('postbuild: dist/agent/launch.cjs is missing (run tsc first)');
  chmodSync(launch, 0o755);
  // Made aside and renamed over: a vouch started meanwhile finds the old file or the new link.
  const tmp = `${cli}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync('launch.cjs', tmp);
  renameSync(tmp, cli);
}

async function bundle() {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    console.warn('postbuild: esbuild is not installed; vouch runs unbundled (slower start)');
    rmSync(bundleFile, { force: true });
    return false;
  }
  // sqlite3's native module, found once here the way `bindings` would find it at every start.
  const sqliteDir = dirname(require.resolve('sqlite3/package.json'));
  const native = require('bindings')({ bindings: 'node_sqlite3.node', path: true, module_root: sqliteDir });
  const nativeRel = `./${relative(out, native)}`;
  const outside = new RegExp(`\\bimport\\((['"])\\./(${OUTSIDE.join('|')})\\.js\\1\\)`, 'g');

  const tmp = `${bundleFile}.${process.pid}.tmp`;
  await esbuild.build({
    entryPoints: [join(root, 'agent', 'main.ts')],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'warning',
    // launch.cjs passes the bundle's file URL (home.ts finds the package root from it).
    define: { 'import.meta.url': '__vouchUrl' },
    plugins: [
      {
        name: 'vouch',
        setup(build) {
          // import() inside a vm.Script needs a flag; launch.cjs passes one that works instead.
          // Node's own modules come through require, which needs no ES module loader.
          build.onLoad({ filter: /[\\/]agent[\\/][^\\/]+\.ts$/ }, (args) => ({
            contents: readFileSync(args.path, 'utf8')
              .replace(outside, (_m, q, name) => `__vouchImport(${q}./${name}.js${q})`)
              .replace(/\bimport\((['"])(node:[a-z/_]+)\1\)/g, (_m, q, name) => `Promise.resolve(require(${q}${name}${q}))`),
            loader: 'ts',
          }));
          build.onLoad({ filter: /[\\/]sqlite3[\\/]lib[\\/]sqlite3-binding\.js$/ }, () => ({
            // Names in variables: esbuild leaves both requires to run time. The second is sqlite3's
            // own lookup, for a tree moved after the build.
            contents: `const native = ${JSON.stringify(nativeRel)}, own = 'sqlite3/lib/sqlite3-binding.js';
try { module.exports = require(native); } catch { module.exports = require(own); }`,
            loader: 'js',
          }));
        },
      },
    ],
  });
  const text = readFileSync(tmp, 'utf8');
  if (/\bimport\(/.test(text.replace(/__vouchImport\(/g, ''))) throw new Error('postbuild: an import() is left in the bundle');
  renameSync(tmp, bundleFile);
  return true;
}

/** One whitelisted delivery in a throwaway home, which writes the code cache as it exits. */
function train() {
  rmSync(cacheFile, { force: true });
  const base = mkdtempSync(join(tmpdir(), 'vouch-build-'));
  try {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', VOUCH_HOME: join(base, 'vouch'), HOME: base, USER: 'build' };
    const run = (args, input, extra = {}) => spawnSync(process.execPath, [cli, ...args], { env: { ...env, ...extra }, input, encoding: 'utf8' });
    const steps = [
      run(['init', '--address', 'build@example.org'], ''),
      run(['whitelist', 'add', 'friend@example.org'], ''),
      run(['deliver'], 'From: friend@example.org\nSubject: build\n\nHello.\n', {
        SENDER: 'friend@example.org',
        RECIPIENT: 'build@example.org',
        LOCAL: 'build',
        HOST: 'example.org',
        EXT: '',
        DTLINE: 'Delivered-To: build@example.org\n',
        RPLINE: 'Return-Path: <friend@example.org>\n',
      }),
    ];
    const failed = steps.find((r) => r.status !== 0 && r.status !== 99);
    if (failed || !existsSync(cacheFile)) {
      console.warn(`postbuild: no code cache (${(failed?.stdout ?? '') + (failed?.stderr ?? '') || 'not written'}); vouch starts slower`.trim());
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

linkCli();
if (await bundle()) train();
