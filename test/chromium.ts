// One browser per test file: Debian's chromium (never a downloaded one) with the flags that keep it
// off this machine's closed network, for the page's browser tests.
import test from 'ava';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launches the file's browser before its tests and closes it after; the getter throws before. */
export function sharedBrowser(): () => Browser {
  let browser: Browser | undefined;
  test.before(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  test.after.always(async () => {
    await browser?.close();
  });
  return () => {
    if (browser === undefined) throw new Error('the browser is not running');
    return browser;
  };
}
