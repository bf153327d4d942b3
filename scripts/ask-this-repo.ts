// Measures Ask About Workspace on this repository in a real VS Code (code-server + Chromium, as
// in the end-to-end test): the time from pressing Enter on the question to the first answer
// token and to the end of the answer, with the panel's own statistics, for a first question
// (cold: every file prefilled into the segment store) and a second one (warm). Needs
// `npm run package` and test/e2e/setup.sh first.
//   node scripts/run-ts.js scripts/ask-this-repo.ts [--workspace DIR] [--json OUT] [--max-new-tokens N]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type Frame, type Page } from 'playwright-core';
import { startCodeServer } from '../test/e2e/codeServer';

const ROOT = path.resolve(__dirname, '..', '..');

async function panelFrame(page: Page): Promise<Frame> {
  for (;;) {
    for (const frame of page.frames()) if (await frame.$('#conversation').catch(() => null)) return frame;
    await page.waitForTimeout(100);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { workspace: { type: 'string' }, json: { type: 'string' }, 'max-new-tokens': { type: 'string' } } });
  const workspace = path.resolve(values.workspace ?? ROOT);
  const maxNewTokens = Number(values['max-new-tokens'] ?? 64);
  const vsix = path.join(ROOT, 'out', 'freqkv-code-linux-x64.vsix');
  const server = await startCodeServer(vsix, {
    'chat.disableAIFeatures': true,
    'workbench.startupEditor': 'none',
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'freqkv.maxNewTokens': maxNewTokens,
  });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-sync'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on('crash', () => console.error('the page crashed'));
    browser.on('disconnected', () => console.error('the browser disconnected'));
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`);
    await page.locator('.statusbar-item', { hasText: /^\s*KV / }).first().waitFor({ timeout: 60_000 });
    /** One question through the palette; the times run from pressing Enter on the question. */
    const askOnce = async (question: string, answersBefore: number): Promise<{ firstTokenMs: number; totalMs: number; stats: Record<string, string>; files: string }> => {
      let asked: number;
      if (answersBefore === 0) {
        // The first question through the command palette and its input box.
        await page.keyboard.press('F1');
        const input = page.locator('.quick-input-widget input');
        await input.fill('>FreqKV: Ask About Workspace');
        await page.locator('.quick-input-list .monaco-list-row', { hasText: 'FreqKV: Ask About Workspace' }).first().waitFor();
        await page.keyboard.press('Enter');
        await page.waitForTimeout(500);
        await input.fill(question);
        asked = performance.now();
        await page.keyboard.press('Enter');
      } else {
        // The next one in the panel's own question box.
        const panel = await panelFrame(page);
        await panel.locator('#question').fill(question);
        asked = performance.now();
        await panel.locator('#ask').click();
      }
      const frame = await panelFrame(page);
      // The first token replaces the progress text ("Reading files into the segment cache…") with the answer.
      // (or the answer ends: the model may stop at once, with an empty answer).
      await frame.waitForFunction(
        (before) => {
          const answers = document.querySelectorAll('.answer');
          const last = answers[answers.length - 1];
          const text = last?.textContent ?? '';
          const done = !(document.getElementById('ask') as HTMLButtonElement).disabled;
          return answers.length > before && ((text !== '' && !text.startsWith('Reading files into the segment cache')) || done);
        },
        answersBefore,
        { timeout: 1_800_000, polling: 50 },
      );
      const firstTokenMs = performance.now() - asked;
      await frame.waitForFunction(() => !(document.getElementById('ask') as HTMLButtonElement).disabled, undefined, { timeout: 1_800_000, polling: 50 });
      const totalMs = performance.now() - asked;
      const stats = await frame.evaluate(() => Object.fromEntries(Array.from(document.querySelectorAll('#stats dt')).map((dt) => [dt.textContent ?? '', dt.nextElementSibling?.textContent ?? ''])));
      const files = await frame.locator('#files summary').innerText();
      return { firstTokenMs: Math.round(firstTokenMs), totalMs: Math.round(totalMs), stats, files };
    };
    const cold = await askOnce('What does this project do?', 0);
    console.log(JSON.stringify({ cold }));
    await page.waitForTimeout(1000);
    const warm = await askOnce('How does the engine compress the cache?', 1);
    fs.mkdirSync(path.join(ROOT, 'test', 'e2e', 'screenshots'), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, 'test', 'e2e', 'screenshots', 'ask-this-repo.png') });
    const result = { workspace, maxNewTokens, cold, warm };
    console.log(JSON.stringify(result, null, 2));
    if (values.json) fs.writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
