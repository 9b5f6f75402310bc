// The two Joi schemas mailauth builds when it loads (a base64 string without required padding; an
// ASCII domain name of two or more labels), for the auth bundle only (scripts/postbuild.js puts it
// in place of Joi there): Joi costs a held delivery about 35 ms to load and build them, measured in
// bench P2A. Anything else asked of it loads the real Joi. test/joi-subset.test.ts compares both.

import { createRequire } from 'node:module';

type Result = { value: unknown; error?: Error };
type Check = (v: string) => boolean;

const B64 = /^[A-Za-z0-9+/]*$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** The last label starts with a letter. */
const TOP = /^[A-Za-z]/;

/** Base64 without required padding: whole groups, then 2 or 3 characters (padded or not). */
function base64(v: string): boolean {
  const body = v.endsWith('==') ? v.slice(0, -2) : v.endsWith('=') ? v.slice(0, -1) : v;
  if (!B64.test(body)) return false;
  const rest = body.length % 4;
  if (v.length > body.length) return (v.length - body.length === 2 && rest === 2) || (v.length - body.length === 1 && rest === 3);
  return rest !== 1;
}

/** An ASCII domain name: two or more labels, none over 63 characters, 256 in all, no final dot. */
function domain(v: string): boolean {
  if (v.length === 0 || v.length > 256) return false;
  const labels = v.split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l)) && TOP.test(labels[labels.length - 1] ?? '');
}

interface Schema {
  validate(value: unknown): Result;
}

function schema(check: Check, what: string): Schema {
  return {
    validate(value: unknown): Result {
      // Joi's schemas are optional: no value is no error.
      if (value === undefined) return { value };
      if (typeof value !== 'string') return { value, error: new Error('"value" must be a string') };
      if (value === '') return { value, error: new Error('"value" is not allowed to be empty') };
      return check(value) ? { value } : { value, error: new Error(`"value" must be a valid ${what}`) };
    },
  };
}

function real(): { string(): Record<string, (...a: unknown[]) => Schema> } {
  return createRequire(import.meta.url)('joi') as never;
}

export function string(): { base64(o?: { paddingRequired?: boolean }): Schema; domain(o?: { allowUnicode?: boolean; tlds?: boolean }): Schema } {
  return {
    base64: (o) => (o?.paddingRequired === false ? schema(base64, 'base64 string') : (real().string()['base64']?.(o) as Schema)),
    domain: (o) => (o?.allowUnicode === false && o.tlds === false ? schema(domain, 'domain name') : (real().string()['domain']?.(o) as Schema)),
  };
}

export default { string };
