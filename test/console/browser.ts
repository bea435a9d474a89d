/**
 * Debian's Chromium driven by playwright-core (no browser is ever downloaded): launching it, and
 * skipping (or, under CI, failing) when /usr/bin/chromium is missing. Shared by the console's
 * browser tests and tools/console-screenshots.ts.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env['STRAND_CHROMIUM'] ?? '/usr/bin/chromium';
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
const HINT = `${CHROMIUM} not found (apt-get install chromium; .ci/run installs it)`;

export function hasChromium(): boolean {
  return existsSync(CHROMIUM);
}

/** Test options that skip without Chromium; under CI nothing is skipped and launchChromium() fails instead. */
export function skipUnlessChromium(): { skip?: string } {
  return hasChromium() || IN_CI ? {} : { skip: HINT };
}

export async function launchChromium(): Promise<Browser> {
  if (!hasChromium()) throw new Error(`${HINT}${IN_CI ? ' — CI must install Chromium for the console tests' : ''}`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}
