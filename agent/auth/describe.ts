// A held message's signals in words, for `vouch pending show`, `vouch check` and the review page.
// The signals are stored JSON, so every field is read defensively.

type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');

/** One line a signal, e.g. "SPF: pass (example.com)". */
export function describeSignals(signals: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  const client = obj(signals['client']);
  if (client !== undefined) {
    const ip = str(client['ip']);
    const src = str(client['source']);
    out.push(ip === '' ? 'Client: unknown (no Received: line from your MTA)' : `Client: ${ip}${str(client['helo']) ? ` HELO ${str(client['helo'])}` : ''} (${src === 'env' ? 'TCPREMOTEIP' : `Received: by ${str(client['by'])}`})`);
  }
  const auth = obj(signals['auth']);
  if (auth !== undefined) {
    const spf = obj(auth['spf']);
    if (spf !== undefined) out.push(`SPF: ${str(spf['result'])}${str(spf['domain']) ? ` (${str(spf['domain'])})` : ''}`);
    const dkim = Array.isArray(auth['dkim']) ? auth['dkim'].map(obj).filter((d): d is Obj => d !== undefined) : [];
    out.push(dkim.length === 0 ? 'DKIM: none' : `DKIM: ${dkim.map((d) => `${str(d['result'])} (${str(d['domain'])})`).join(', ')}`);
    const dmarc = obj(auth['dmarc']);
    out.push(dmarc === undefined ? 'DMARC: none' : `DMARC: ${str(dmarc['result'])} (${str(dmarc['domain'])}${str(dmarc['policy']) ? `, p=${str(dmarc['policy'])}` : ''})`);
    if (str(auth['arc']) !== '' && str(auth['arc']) !== 'none') out.push(`ARC: ${str(auth['arc'])}`);
    const how = str(auth['source']) === 'header' ? "your MTA's Authentication-Results" : `checked in ${str(auth['ms'])} ms`;
    out.push(`Authentication: ${how}${auth['temperror'] === true ? '; DNS did not answer in time (temperror)' : ''}`);
  }
  if (Array.isArray(signals['dnsbl'])) {
    for (const d of signals['dnsbl'].map(obj)) {
      if (d !== undefined) out.push(`DNSBL ${str(d['zone'])}: ${str(d['status'])}${str(d['answer']) ? ` (${str(d['answer'])})` : ''}`);
    }
  }
  const bl = obj(signals['blocklist']);
  if (bl !== undefined) {
    const until = typeof bl['until'] === 'number' ? `until ${new Date(bl['until']).toISOString().slice(0, 16).replace('T', ' ')}` : 'until removed';
    out.push(`Local blocklist: ${str(bl['net'])} listed ${until} (${str(bl['why'])})`);
  }
  if (typeof signals['visible'] === 'boolean') out.push(`Your address in To:/Cc:: ${signals['visible'] ? 'yes' : 'no'}`);
  return out;
}

/** A few words for a list row: the client and each authentication result, e.g.
 * "192.0.2.1 · SPF pass · DKIM none · DMARC fail · bl.test listed". */
export function signalSummary(signals: Readonly<Record<string, unknown>>): string {
  const parts: string[] = [];
  const ip = str(obj(signals['client'])?.['ip']);
  if (ip !== '') parts.push(ip);
  const auth = obj(signals['auth']);
  if (auth !== undefined) {
    parts.push(`SPF ${str(obj(auth['spf'])?.['result']) || 'none'}`);
    const dkim = Array.isArray(auth['dkim']) ? auth['dkim'].map((d) => str(obj(d)?.['result'])) : [];
    parts.push(`DKIM ${dkim.includes('pass') ? 'pass' : dkim[0] ?? 'none'}`);
    parts.push(`DMARC ${str(obj(auth['dmarc'])?.['result']) || 'none'}`);
    if (auth['temperror'] === true) parts.push('DNS timeout');
  }
  if (Array.isArray(signals['dnsbl'])) for (const d of signals['dnsbl'].map(obj)) if (d?.['status'] === 'listed') parts.push(`${str(d['zone'])} listed`);
  if (obj(signals['blocklist']) !== undefined) parts.push('local blocklist');
  return parts.join(' · ');
}
