// `vouch pending show`: one held message as text, headers decoded, text body only. The MIME parser
// is loaded here and never on the delivery path; oversize mail is shown without parsing.

import type { Config } from '../home/config.js';
import { cleanText, readHeaders } from '../mail/header.js';
import type { Held } from '../store/store.js';
import { describeSignals } from '../auth/describe.js';
import { describeSignal } from '../policy/classify.js';

/** Mail text made safe for a terminal: control characters (escape sequences among them) shown as
 * `^X`, except newlines and tabs. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r\n/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f\u0080-\u009f]/g, (c) => `^${String.fromCharCode((c.charCodeAt(0) + 64) & 0x7f)}`);
}

export async function renderText(held: Held, raw: Buffer, config: Config): Promise<string> {
  const lines = [
    `Id:        ${held.id}`,
    `Received:  ${new Date(held.received).toISOString()}`,
    `Sender:    ${held.sender || '<>'}`,
    `Held:      ${held.reason}`,
    `Challenge: ${held.challenge}${held.challengeNote ? ` (${held.challengeNote})` : ''}`,
    ...(held.suspect ? ['Suspect:   yes (forged or blocklisted: a confirmation does not release it)'] : []),
    ...describeSignals(held.signals).map((l) => `  ${printable(l)}`),
    '',
  ];
  const c = describeSignal(held.signals);
  if (c !== undefined) lines.push(`Classifier: ${c.text}`);
  lines.push('');
  const headers = readHeaders(raw, config.delivery.header_limit);
  for (const f of headers.fields) lines.push(`${f.name}: ${cleanText(f.value, 500)}`);
  lines.push('');
  if (raw.length > config.delivery.max_size) {
    lines.push(`(larger than delivery.max_size: body not parsed; use --raw)`);
    return `${lines.join('\n')}\n`;
  }
  const { parseMessage } = await import('../mail/parse.js');
  // A message the parser refuses (too deep, too slow, too big for its heap) is still shown: headers
  // above, the reason here, the bytes through --raw.
  let parsed: Awaited<ReturnType<typeof parseMessage>>;
  try {
    parsed = await parseMessage(raw, { maxBytes: config.delivery.max_size });
  } catch (err) {
    lines.push(`(body not decoded: ${printable(err instanceof Error ? err.message : 'parser error').slice(0, 200)}; use --raw)`);
    return `${lines.join('\n')}\n`;
  }
  lines.push(printable(parsed.text ?? (parsed.html !== undefined ? '(HTML only: see it on the review page)' : '(no text part)')));
  for (const a of parsed.attachments) lines.push(`[attachment: ${a.filename} ${a.contentType} ${a.size} bytes]`);
  return `${lines.join('\n')}\n`;
}
