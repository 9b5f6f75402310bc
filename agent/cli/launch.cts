// What dist/agent/cli.js points at (a symlink to cli/launch.cjs made by scripts/postbuild.js). Node runs a main file
// whose real name ends in .cjs without starting its ES module loader, which alone costs a third of
// a delivery's budget. Runs the bundled CLI (cli.bundle.cjs) with V8's code cache, so the code the
// delivery path runs is neither parsed nor compiled again; without a bundle, tsc's main.js. The
// store (SQLite) and the challenge path (templates, composer) are bundles of their own,
// store.bundle.cjs and challenge.bundle.cjs, run the same way only when a delivery needs them: a
// whitelisted delivery loads neither.

import fs = require('node:fs');
import path = require('node:path');
import url = require('node:url');
import vm = require('node:vm');

type Body = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
  vouchImport: (specifier: string) => Promise<unknown>,
  vouchMeta: { readonly url: string },
) => void;

/** tsc's modules that have a bundle of their own beside them. */
const BUNDLED: Readonly<Record<string, string>> = {
  '../store/store.js': 'store.bundle.cjs',
  '../challenge/challenge.js': 'challenge.bundle.cjs',
  // The checks every held message runs ride in the store's bundle.
  '../auth/screen.js': 'store.bundle.cjs',
  '../auth/check.js': 'auth.bundle.cjs',
  '../classify/bogofilter.js': 'classify.bundle.cjs',
  '../release/blocklist.js': 'blocklist.bundle.cjs',
};

/** Writes a bundle's code cache as this process leaves, when it had none or V8 refused it (a new
 * Node or a rebuilt bundle). Only a delivery writes it: its functions are the ones worth caching.
 * Where the package folder is not writable, the next start simply compiles again. */
function saveOnExit(script: vm.Script, cache: string): void {
  process.once('exit', () => {
    try {
      const tmp = `${cache}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cache);
    } catch {
      /* not writable: no cache */
    }
  });
}

/** Runs one bundle with its code cache and returns its exports; undefined when it is missing. */
function run(name: string): unknown {
  const file = path.join(__dirname, name);
  const cache = file.replace(/\.cjs$/, '.cache');
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cache);
  } catch {
    cachedData = undefined;
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname, __vouchImport, __vouchMeta) {${source}\n})`;
  const script = new vm.Script(wrapped, cachedData === undefined ? { filename: file } : { filename: file, cachedData });
  if ((cachedData === undefined || script.cachedDataRejected === true) && process.argv.includes('deliver')) saveOnExit(script, cache);
  const body = script.runInThisContext() as Body;
  const module = { exports: {} as unknown };
  // import.meta.url, made only if asked for (home.ts finds the package root from it; a delivery
  // rarely needs it, and the URL parser's first use is not free).
  const meta = {
    get url(): string {
      return url.pathToFileURL(file).href;
    },
  };
  body(module.exports, require, module, file, __dirname, vouchImport, meta);
  return module.exports;
}

/** import() for the bundles: a module with a bundle of its own runs from it, any other is
 * imported from tsc's output, where relative names resolve. */
function vouchImport(specifier: string): Promise<unknown> {
  const name = BUNDLED[specifier];
  if (name !== undefined) {
    try {
      // Run once, as import() would: a second import gets the same exports.
      const exports = loaded.get(name) ?? run(name);
      if (exports !== undefined) {
        loaded.set(name, exports);
        return Promise.resolve(exports);
      }
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return import(specifier);
}

const loaded = new Map<string, unknown>();

if (run('cli.bundle.cjs') === undefined) void import('./main.js');
