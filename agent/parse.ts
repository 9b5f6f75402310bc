// MIME parsing of held mail for display, with limits: mailparser on at most maxBytes, stopped after
// a time limit so one hostile message cannot hang the CLI or the web page.

import { simpleParser, type ParsedMail } from 'mailparser';

export interface ParsedView {
  readonly text: string | undefined;
  readonly html: string | undefined;
  readonly attachments: readonly { readonly filename: string; readonly contentType: string; readonly size: number }[];
  readonly truncated: boolean;
}

export async function parseMessage(raw: Buffer, opts: { readonly maxBytes: number; readonly timeoutMs?: number }): Promise<ParsedView> {
  const truncated = raw.length > opts.maxBytes;
  const input = truncated ? raw.subarray(0, opts.maxBytes) : raw;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('parsing took too long')), opts.timeoutMs ?? 5_000);
  });
  try {
    const mail: ParsedMail = await Promise.race([simpleParser(input, { skipImageLinks: true, maxHtmlLengthToParse: 2_000_000 }), timeout]);
    return {
      text: mail.text,
      html: typeof mail.html === 'string' ? mail.html : undefined,
      attachments: mail.attachments.map((a) => ({ filename: a.filename ?? '(unnamed)', contentType: a.contentType, size: a.size })),
      truncated,
    };
  } finally {
    clearTimeout(timer);
  }
}
