// tldts (the public suffix list mailauth finds DMARC's organisational domain with, and
// agent/auth/check.ts its own) as the auth bundle carries it: the same code, with its rule tree
// made on demand, one top-level label at a time. tldts builds the whole tree (about 9,000 objects
// written as object literals) when it loads, which was half of what loading the auth bundle cost a
// held delivery; a delivery looks up a few domains under one or two top-level labels.
//
// The tree's top level becomes an index string, "\n<label>\t<subtree as JSON>" per label (ASCII
// only, so the string is one byte a character), read through a Proxy that parses a label's subtree
// the first time tldts asks for it. tldts only ever reads the tree (own-property test, then get),
// which is all the Proxy answers. The build checks that every rule of the list gives the same answer
// both ways (lazySuffixes throws otherwise), so a new tldts that changes its layout fails the build
// instead of changing an answer.

import { createRequire } from 'node:module';

const RULES = /\nconst rules = \(function \(\) \{\n[\s\S]*?\n\}\)\(\);\n/;

/** A label or JSON text with every character outside printable ASCII written as \uXXXX. */
const ascii = (s) => s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** What the bundle gets in place of the rules' literal (the index is a string literal). */
function lazyRules(flag, index) {
  return `
const rules = [${flag}, (function (index) {
  const ascii = ${ascii.toString()};
  const parsed = new Map();
  const find = (label) => {
    if (typeof label !== 'string') return undefined;
    if (parsed.has(label)) return parsed.get(label);
    const key = ascii(label);
    let node;
    if (!/[\\n\\t]/.test(key)) {
      const at = index.indexOf('\\n' + key + '\\t');
      if (at >= 0) {
        const from = at + key.length + 2;
        node = JSON.parse(index.slice(from, index.indexOf('\\n', from)));
      }
    }
    parsed.set(label, node);
    return node;
  };
  return new Proxy({}, {
    get: (_, label) => find(label),
    has: (_, label) => find(label) !== undefined,
    getOwnPropertyDescriptor: (_, label) => {
      const node = find(label);
      return node === undefined ? undefined : { value: node, writable: false, enumerable: true, configurable: true };
    },
  });
})(${JSON.stringify(index)})];
`;
}

/** Runs a CommonJS source and returns its exports, plus the named top-level constants. */
function evaluate(source, file, names) {
  const module = { exports: {} };
  const tail = names.map((n) => `module.exports.__${n} = ${n};`).join('\n');
  new Function('module', 'exports', 'require', `${source}\n${tail}`)(module, module.exports, createRequire(file));
  return module.exports;
}

/** Every domain the check compares: each rule and exception, bare and under one to three labels. */
function samples(trees) {
  const out = ['example.com', 'a.b.example.co.uk', 'EXAMPLE.COM', 'example.com.', 'localhost', '192.0.2.1', 'a..b.com', '', 'münchen.de', 'xn--mnchen-3ya.de'];
  const walk = (node, path) => {
    for (const [label, child] of Object.entries(node[1])) {
      const p = [label === '*' ? 'wild' : label, ...path];
      for (const pre of [[], ['x'], ['y', 'x'], ['www', 'y', 'x']]) out.push([...pre, ...p].join('.'));
      walk(child, [label, ...path]);
    }
  };
  for (const t of trees) walk(t, []);
  return out;
}

/** tldts's source with the rules made on demand; throws when the layout is not the one expected
 * or when any answer differs from the original's. */
export function lazySuffixes(source, file) {
  if (!RULES.test(source)) throw new Error(`postbuild: ${file} has no rules literal where expected (a new tldts?)`);
  const original = evaluate(source, file, ['rules', 'exceptions']);
  const [flag, top] = original.__rules;
  if (typeof flag !== 'number' || top === null || typeof top !== 'object') throw new Error(`postbuild: ${file}: unexpected rules layout`);
  let index = '';
  for (const [label, child] of Object.entries(top)) {
    if (/[\n\t\\"]/.test(label)) throw new Error(`postbuild: ${file}: label ${JSON.stringify(label)} cannot be indexed`);
    index += `\n${ascii(label)}\t${ascii(JSON.stringify(child))}`;
  }
  index += '\n';
  const lazy = source.replace(RULES, () => lazyRules(flag, index));
  const made = evaluate(lazy, file, []);
  const options = [{ allowIcannDomains: true, allowPrivateDomains: true }, { allowPrivateDomains: true }, {}];
  let checked = 0;
  for (const domain of samples([original.__rules, original.__exceptions])) {
    for (const o of options) {
      for (const fn of ['getDomain', 'getPublicSuffix']) {
        const a = original[fn](domain, o);
        const b = made[fn](domain, o);
        if (a !== b) throw new Error(`postbuild: lazy public suffixes differ for ${fn}(${JSON.stringify(domain)}, ${JSON.stringify(o)}): ${a} vs ${b}`);
        checked++;
      }
    }
  }
  return { source: lazy, checked };
}
