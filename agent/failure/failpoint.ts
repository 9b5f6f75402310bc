// Named crash points for the kill-anywhere tests. Inert unless VOUCH_FAILPOINT names the point:
// then the process dies there with SIGKILL, as a power cut or an MTA timeout would kill it.

const armed = process.env['VOUCH_FAILPOINT'];

export function failpoint(name: string): void {
  if (armed !== undefined && armed === name) process.kill(process.pid, 'SIGKILL');
}
