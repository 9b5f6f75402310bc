// `vouch pending show`: one held message as text, headers decoded, text body only. The MIME parser
// is loaded here and never on the delivery path; oversize mail is shown without parsing.

import type { Config } from './config.js';
import { cleanText, readHeaders } from './header.js';
import type { Held } from './store.js';

export async function renderText(held: Held, raw: Buffer, config: Config): Promise<string> {
  const lines = [
    `Id:        ${held.id}`,
    `Received:  ${new Date(held.received).toISOString()}`,
    `Sender:    ${held.sender || '<>'}`,
    `Held:      ${held.reason}`,
    `Challenge: ${held.challenge}${held.challengeNote ? ` (${held.challengeNote})` : ''}`,
    '',
  ];
  const headers = readHeaders(raw, config.delivery.header_limit);
  for (const f of headers.fields) lines.push(`${f.name}: ${cleanText(f.value, 500)}`);
  lines.push('');
  if (raw.length > config.delivery.max_size) {
    lines.push(`(larger than delivery.max_size: body not parsed; use --raw)`);
    return `${lines.join('\n')}\n`;
  }
  const { parseMessage } = await import('./parse.js');
  const parsed = await parseMessage(raw, { maxBytes: config.delivery.max_size });
  lines.push(parsed.text ?? '(no text part)');
  for (const a of parsed.attachments) lines.push(`[attachment: ${a.filename} ${a.contentType} ${a.size} bytes]`);
  return `${lines.join('\n')}\n`;
}
