// HTML mail made inert before it reaches the sandboxed frame: an allowlist of formatting tags and
// attributes, no script, no forms, no frames, and no URL the browser would fetch (only data:
// images; links become plain text with the address as a tooltip). The frame's CSP and sandbox
// stay the real barrier; this keeps a hostile message from even asking for a remote load.
// It runs inside the parser worker (agent/mail/parse.ts loads it by URL as `filterHtml`).

import { Parser } from 'htmlparser2';

const KEEP = new Set([
  'a', 'abbr', 'address', 'b', 'big', 'blockquote', 'br', 'caption', 'center', 'cite', 'code', 'col', 'colgroup', 'dd', 'del',
  'dfn', 'div', 'dl', 'dt', 'em', 'font', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'ins', 'kbd', 'li', 'mark', 'ol',
  'p', 'pre', 'q', 's', 'samp', 'small', 'span', 'strike', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th',
  'thead', 'tr', 'tt', 'u', 'ul', 'var', 'wbr', 'section', 'article', 'header', 'footer', 'main', 'nav', 'aside', 'figure', 'figcaption',
]);

/** Dropped together with everything inside them. */
const DROP = new Set([
  'script', 'title', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'template', 'svg', 'math', 'video', 'audio',
  'source', 'track', 'picture', 'canvas', 'select', 'textarea', 'option', 'noembed', 'noframes', 'xmp', 'plaintext',
]);

const VOID = new Set(['br', 'hr', 'img', 'col', 'wbr']);

const ATTRS = new Set([
  'align', 'valign', 'width', 'height', 'border', 'cellpadding', 'cellspacing', 'colspan', 'rowspan', 'bgcolor', 'color', 'face',
  'size', 'dir', 'lang', 'title', 'alt', 'class', 'start', 'type', 'span', 'nowrap', 'headers', 'scope', 'abbr',
]);

const DATA_IMAGE = /^data:image\/(?:png|gif|jpeg|webp);base64,[a-z0-9+/=\s]*$/i;

/** CSS that could fetch something (url(), image-set(), @import) or hide it behind escapes. */
const RISKY_CSS = /\\|url\s*\(|image(?:-set)?\s*\(|@import|expression\s*\(|behavior|binding|<\/style/i;

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function filterHtml(html: string): string {
  const out: string[] = [];
  const styles: string[] = [];
  const stack: { name: string; kept: boolean }[] = [];
  let skip = 0;
  // The text of the <style> element being read (htmlparser2 may hand it over in pieces).
  let style: string[] | undefined;
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        if (skip > 0 && VOID.has(name)) return;
        if (skip > 0 || DROP.has(name)) {
          skip += 1;
          stack.push({ name, kept: false });
          return;
        }
        if (name === 'style') {
          style = [];
          stack.push({ name, kept: false });
          return;
        }
        const kept = KEEP.has(name);
        if (!VOID.has(name)) stack.push({ name, kept });
        if (!kept) return;
        const attrs: string[] = [];
        for (const [k, v] of Object.entries(attribs)) {
          const key = k.toLowerCase();
          if (ATTRS.has(key)) attrs.push(`${key}="${esc(v)}"`);
          else if (key === 'style' && !RISKY_CSS.test(v)) attrs.push(`style="${esc(v)}"`);
        }
        if (name === 'a' && attribs['href']) attrs.push(`title="${esc(attribs['href'].slice(0, 500))}"`);
        if (name === 'img') {
          const src = attribs['src'] ?? '';
          if (!DATA_IMAGE.test(src)) {
            out.push(`<span class="vouch-image">[image${attribs['alt'] ? `: ${esc(attribs['alt'].slice(0, 200))}` : ''}]</span>`);
            return;
          }
          attrs.push(`src="${esc(src)}"`);
        }
        out.push(`<${name}${attrs.length > 0 ? ` ${attrs.join(' ')}` : ''}>`);
      },
      onclosetag(name) {
        if (VOID.has(name)) return;
        const top = stack.pop();
        if (!top) return;
        if (skip > 0) {
          skip -= 1;
          return;
        }
        if (top.name === 'style') {
          const css = (style ?? []).join('');
          if (!RISKY_CSS.test(css)) styles.push(css);
          style = undefined;
          return;
        }
        if (top.kept) out.push(`</${top.name}>`);
      },
      ontext(text) {
        if (skip > 0) return;
        if (style) {
          style.push(text);
          return;
        }
        out.push(esc(text));
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true, recognizeSelfClosing: false },
  );
  parser.write(html);
  parser.end();
  while (stack.length > 0) {
    const top = stack.pop();
    if (top?.kept && skip === 0) out.push(`</${top.name}>`);
  }
  const css = styles.join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><style>body{font-family:system-ui,sans-serif;margin:8px;overflow-wrap:anywhere}.vouch-image{color:#777}</style>${css ? `<style>${css}</style>` : ''}</head><body>${out.join('')}</body></html>`;
}
