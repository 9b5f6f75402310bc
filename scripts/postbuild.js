// Makes the compiled CLI executable after tsc (tsc does not keep the mode bit).
import { chmodSync, existsSync } from 'node:fs';
const cli = new URL('../dist/agent/cli.js', import.meta.url);
if (existsSync(cli)) chmodSync(cli, 0o755);
