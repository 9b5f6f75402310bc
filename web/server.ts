// The review web page. (Being written in the issue "The review web page".)

import type { HomePaths } from '../agent/home.js';

export interface WebOptions {
  readonly home: HomePaths;
  readonly listen: string | undefined;
  readonly hashPassword: boolean;
}

export async function runWeb(_opts: WebOptions): Promise<void> {
  throw new Error('the web page is not built yet');
}
