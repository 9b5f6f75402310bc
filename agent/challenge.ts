// Confirmation requests: composed from templates, sent with the null envelope sender.
// (Being written in the issue "Challenges and confirmations".)

import type { Config } from './config.js';
import type { Held } from './store.js';

export interface ChallengeRequest {
  readonly config: Config;
  readonly secret: Buffer;
  readonly held: Held;
  readonly now: number;
}

export async function sendChallenge(_req: ChallengeRequest): Promise<void> {
  throw Object.assign(new Error('challenges are not built yet'), { code: 'ENOTBUILT' });
}
