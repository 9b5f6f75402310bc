// What dist/agent/cli.js points at (a symlink made by scripts/postbuild.js). Node runs a main file
// whose real name ends in .cjs without starting its ES module loader, which alone costs a third of
// a delivery's budget. Runs the bundled CLI (cli.bundle.cjs) with V8's code cache, so the code the
// delivery path runs is neither parsed nor compiled again; without a bundle, tsc's main.js.

import fs = require('node:fs');
import path = require('node:path');
import url = require('node:url');
import vm = require('node:vm');

const bundle = path.join(__dirname, 'cli.bundle.cjs');
const cache = path.join(__dirname, 'cli.bundle.cache');

type Body = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
  vouchImport: (specifier: string) => Promise<unknown>,
  vouchUrl: string,
) => void;

/** Writes the code cache as this process leaves, when it had none or V8 refused it (a new Node or
 * a rebuilt bundle). Only a delivery writes it: its functions are the ones worth caching. Where
 * the package folder is not writable, the next start simply compiles again. */
function saveOnExit(script: vm.Script): void {
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

function start(): void {
  let source: string;
  try {
    source = fs.readFileSync(bundle, 'utf8');
  } catch {
    void import('./main.js');
    return;
  }
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cache);
  } catch {
    cachedData = undefined;
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname, __vouchImport, __vouchUrl) {${source}\n})`;
  const script = new vm.Script(wrapped, cachedData === undefined ? { filename: bundle } : { filename: bundle, cachedData });
  if ((cachedData === undefined || script.cachedDataRejected === true) && process.argv.includes('deliver')) saveOnExit(script);
  const body = script.runInThisContext() as Body;
  const module = { exports: {} };
  // import() of tsc's modules (commands, challenge) from here, where relative names resolve.
  body(module.exports, require, module, bundle, __dirname, (s) => import(s), url.pathToFileURL(bundle).href);
}

start();
