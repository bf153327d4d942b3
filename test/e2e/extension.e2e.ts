// The extension in a real VS Code: the packaged .vsix installed into code-server, driven by
// Debian's headless Chromium through playwright-core, the way a person uses it: the activity
// bar, F1 and a command's title, the chat's question box. It checks that nothing activates
// before use, asks about a fixture workspace and summarizes a file longer than the embedded
// model's context (answers stream into the chat view, the statistics show compressions, the
// status bar the cache memory), asks a follow-up in the chat, copies a code block, opens a
// file link at its line, and shows hostile output inert under the webview's CSP. Screenshots
// go to test/e2e/screenshots/. Run with `npm run test:e2e` (it installs what it needs first).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCodeServer, type CodeServer } from './codeServer';
import { buildHubRepo, startHubServer, type HubServer } from '../hubServer';

const ROOT = path.resolve(__dirname, '..', '..');
const VSIX = path.join(ROOT, 'out', 'freqkv-code-linux-x64.vsix');
const SCREENSHOTS = path.join(ROOT, 'test', 'e2e', 'screenshots');
const CHROMIUM = process.env.FREQKV_E2E_CHROMIUM ?? '/usr/bin/chromium';

/** A workspace: a story longer than the embedded model's 512-token context, a source file, a binary and an ignored file. */
function makeWorkspace(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-e2e-ws-'));
  const story = fs.readFileSync(path.join(ROOT, 'bench', 'texts', 'the-lighthouse-cat.txt'), 'utf8');
  const chapters = [1, 2, 3, 4].map((n) => `## Chapter ${n}\n\n${story.trim()}\n`).join('\n');
  fs.writeFileSync(path.join(dir, 'long-story.md'), `# The Lighthouse Cat, told four times\n\n${chapters}`);
  fs.mkdirSync(path.join(dir, 'src'));
  fs.writeFileSync(path.join(dir, 'src', 'lamp.ts'), 'export function lightTheLamp(keeper: string): string {\n  return `${keeper} lit the lamp`;\n}\n');
  fs.writeFileSync(path.join(dir, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13]));
  fs.writeFileSync(path.join(dir, '.gitignore'), 'secret.txt\n');
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'not for the model\n');
  return dir;
}

let server: CodeServer;
let hub: HubServer;
let browser: Browser;
let page: Page;
let workspace: string;

/** Paths on the stand-in hub that hostile output tries to load; none may ever be requested. */
const LEAK = '/leak-';

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** Runs a command from the palette by its title, as a person does. */
async function runCommand(title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
}

/** The FreqKV chat view's document (the webview is an iframe inside an iframe). */
async function panelFrame(): Promise<Frame> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (await frame.$('body.view #thread').catch(() => null)) return frame;
    }
    await page.waitForTimeout(250);
  }
  throw new Error('The FreqKV chat view did not appear within 60 s.');
}

/** Waits until the chat's latest answer is done (the Ask button is enabled again) and returns the chat. */
async function waitForAnswer(answersBefore: number): Promise<Frame> {
  const frame = await panelFrame();
  await frame.waitForFunction((before) => document.querySelectorAll('.turn .answer').length > before, answersBefore, { timeout: 120_000 });
  await frame.waitForFunction(() => !document.querySelector('.turn.running') && !(document.getElementById('ask') as HTMLButtonElement).disabled, undefined, { timeout: 300_000 });
  return frame;
}

/** A row of the last turn's statistics table. */
async function statValue(frame: Frame, label: string): Promise<string> {
  return frame.evaluate((wanted) => {
    const rows = Array.from(document.querySelectorAll('.turn:last-of-type .stats-table tr'));
    const row = rows.find((r) => r.querySelector('th')?.textContent === wanted);
    return row?.querySelector('td')?.textContent ?? '';
  }, label);
}

const count = (text: string): number => Number.parseFloat(text.replace(/,/g, ''));

/** Asks in the chat view's question box, as a person types it. */
async function askInChat(question: string): Promise<Frame> {
  const frame = await panelFrame();
  const before = await frame.locator('.turn .answer').count();
  await frame.locator('#question').fill(question);
  await frame.locator('#question').press('Enter');
  return waitForAnswer(before);
}

function statusBarItem(): ReturnType<Page['locator']> {
  return page.locator('.statusbar-item', { hasText: /^\s*KV / }).first();
}

beforeAll(async () => {
  if (!fs.existsSync(VSIX)) throw new Error(`${VSIX} is missing: run "npm run package" first (npm run test:e2e does).`);
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  for (const old of fs.readdirSync(SCREENSHOTS)) if (old.endsWith('.png')) fs.rmSync(path.join(SCREENSHOTS, old));
  workspace = makeWorkspace();
  // Download Model fetches from a stand-in hub on 127.0.0.1 serving a builder-made model (nothing else is reachable here).
  const repo = buildHubRepo();
  hub = await startHubServer({ 'onnx-community/Qwen2.5-Coder-0.5B-Instruct': repo, 'onnx-community/Qwen2.5-Coder-1.5B-Instruct': repo }, { lifetimeMs: 900_000 });
  server = await startCodeServer(VSIX, {
    'freqkv.huggingFaceEndpoint': hub.endpoint,
    'chat.disableAIFeatures': true,
    'workbench.startupEditor': 'none',
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'workbench.tips.enabled': false,
    'security.workspace.trust.enabled': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'freqkv.maxNewTokens': 40,
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // The clipboard permissions let the test read what the chat's Copy button put there.
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, permissions: ['clipboard-read', 'clipboard-write'] });
  page = await context.newPage();
  await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
}, 240_000);

// A failing step leaves a picture of what the browser showed.
afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && page) await screenshot(`failed-${context.task.name.slice(0, 40).replace(/[^a-z0-9]+/gi, '-')}`).catch(() => undefined);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await hub?.close();
});

describe('FreqKV in code-server', () => {
  it('does not activate before it is used; opening the chat view activates it', async () => {
    // A window that never uses FreqKV has no status bar item (and no output channel or watcher).
    await page.locator('.statusbar').waitFor({ timeout: 60_000 });
    await page.waitForTimeout(5000);
    expect(await statusBarItem().count()).toBe(0);
    await page.locator('.activitybar [aria-label^="FreqKV"]').first().click();
    await panelFrame();
    await statusBarItem().waitFor({ timeout: 60_000 });
    expect(await statusBarItem().innerText()).toMatch(/KV/);
    await screenshot('01-workbench');
  });

  it('Ask About Workspace (segmented) streams an answer and lists each file at the resolution the cache holds it', async () => {
    await runCommand('FreqKV: Ask About Workspace');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await page.waitForTimeout(300);
    await input.fill('Who lit the lamp?');
    await page.keyboard.press('Enter');
    const frame = await waitForAnswer(0);
    const answer = await frame.locator('.turn .answer').last().innerText();
    expect(answer.trim().length).toBeGreaterThan(0);
    const context = frame.locator('.turn').last().locator('details.context');
    // Answer first: the two files that match the question (the story and src/lamp.ts) are in its
    // cache; every other file is left out, with why: .gitignore (no word of the question) not
    // indexed yet, the binary and the ignored file by the rules.
    expect(await context.locator('summary').innerText()).toMatch(/Context: 2 files, [\d,]+ tokens; 3 left out/);
    // Segmented mode (the default): each file was prefilled on its own (the story compressed by
    // FreqKV) and the cache was assembled from the stored segments: rows stand for many tokens,
    // and each file has a bar of its rows against its stored rows.
    await context.evaluate((details) => ((details as HTMLDetailsElement).open = true));
    expect(await context.textContent()).toMatch(/long-story\.md — [\d,]+ tokens, [\d,]+ of [\d,]+ rows/);
    expect(await context.locator('.bar').count()).toBe(2);
    expect(await context.textContent()).toMatch(/logo\.png/);
    expect(await context.textContent()).toMatch(/secret\.txt/);
    expect(await context.textContent()).toMatch(/\.gitignore/);
    await frame.locator('.turn').last().locator('details.stats').evaluate((details) => ((details as HTMLDetailsElement).open = true));
    expect(Number.parseFloat(await statValue(frame, 'Effective ratio'))).toBeGreaterThan(2);
    expect(await statusBarItem().innerText()).toMatch(/KV [\d.]+ (B|kB|MB) · [\d.]+×/);
    await screenshot('02-ask-about-workspace');
  });

  it('Summarize File on a file longer than the model context streams a summary with compressions', async () => {
    const frameBefore = await panelFrame();
    const answersBefore = await frameBefore.locator('.turn .answer').count();
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill('long-story.md');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'long-story.md' }).first().waitFor({ timeout: 30_000 });
    await page.keyboard.press('Enter');
    await page.locator('.tab', { hasText: 'long-story.md' }).first().waitFor({ timeout: 30_000 });
    await runCommand('FreqKV: Summarize File');
    const frame = await waitForAnswer(answersBefore);
    const question = await frame.locator('.question').last().innerText();
    expect(question).toBe('Summarize long-story.md');
    expect(await frame.locator('.turn').last().locator('details.context summary').innerText()).toMatch(/Context: 1 file, [\d,]+ tokens; 0 left out/);
    expect((await frame.locator('.turn .answer').last().innerText()).trim().length).toBeGreaterThan(0);
    await frame.locator('.turn').last().locator('details.stats').evaluate((details) => ((details as HTMLDetailsElement).open = true));
    expect(count(await statValue(frame, 'Tokens seen'))).toBeGreaterThan(512);
    expect(count(await statValue(frame, 'Compressions'))).toBeGreaterThan(0);
    const status = await statusBarItem().innerText();
    expect(status).toMatch(/KV [\d.]+ (B|kB|MB) · [\d.]+×/);
    await screenshot('03-summarize-file');
  });

  it('the status bar item opens the statistics and its tooltip has the details', async () => {
    await statusBarItem().hover();
    await page.locator('.monaco-hover, .workbench-hover', { hasText: 'Cache rows' }).first().waitFor({ timeout: 15_000 });
    await screenshot('04-status-bar-tooltip');
    await statusBarItem().click();
    const frame = await panelFrame();
    await frame.locator('#cache-status').waitFor({ state: 'visible', timeout: 15_000 });
    await frame.locator('#cache-status').evaluate((details) => ((details as HTMLDetailsElement).open = true));
    expect(await frame.locator('#cache-status-body').innerText()).toMatch(/Last answer: [\d,]+ of [\d,]+ rows/);
    await frame.locator('#cache-status').evaluate((details) => ((details as HTMLDetailsElement).open = false));
  });

  it('the chat: a question typed in the view, then a follow-up that sees the earlier turn', async () => {
    await page.mouse.move(600, 300);
    const before = await panelFrame();
    await before.locator('#new-chat').click();
    await before.waitForFunction(() => document.querySelectorAll('.turn').length === 0, undefined, { timeout: 15_000 });
    let frame = await askInChat('Who lit the lamp?');
    expect(await frame.locator('.turn').count()).toBe(1);
    expect(await frame.locator('.turn').first().locator('.follow-up').count()).toBe(0);
    frame = await askInChat('And what did the cat do then?');
    const turns = frame.locator('.turn');
    expect(await turns.count()).toBe(2);
    expect(await turns.nth(1).locator('.follow-up').innerText()).toBe('Follow-up: the prompt repeats the 1 earlier turn.');
    expect((await turns.nth(1).locator('.answer').innerText()).trim().length).toBeGreaterThan(0);
    // The earlier turn is in the prompt after the files (the question's part, not the stored
    // segments): the follow-up's prompt is longer than the first question's by about its answer.
    const promptTokens = async (n: number): Promise<number> => {
      const cell = await turns.nth(n).locator('.stats-table tr:has(th:text-is("Tokens seen")) td').textContent();
      return count(/\(([\d,]+) prompt/.exec(cell ?? '')?.[1] ?? 'NaN');
    };
    expect(await promptTokens(1)).toBeGreaterThan((await promptTokens(0)) + 10);
    await turns.nth(1).locator('details.stats').evaluate((details) => ((details as HTMLDetailsElement).open = true));
    expect(await frame.locator('.error').count()).toBe(0);
    await screenshot('07-chat-follow-up');
  });

  it('an answer with a code block, a file reference and hostile markup: Copy, the link, and nothing runs or loads', async () => {
    // The embedded model writes children's stories: it cannot be made to write a code block, a
    // file path or an attack. So this answer is posted into the real chat webview the way the
    // host posts an answer (a message on the webview's window), and goes through the same
    // rendering: markdown-it, DOMPurify, the file links, the code-block actions, under the CSP.
    const frame = await panelFrame();
    const hub0 = hub.endpoint;
    const markdown = [
      'The lamp is lit in `src/lamp.ts:2`:',
      '',
      '```ts',
      'export const lit = lightTheLamp("Lily");',
      '```',
      '',
      '1. first',
      '   - nested',
      '',
      '| file | rows |',
      '| --- | --- |',
      '| src/lamp.ts | 30 |',
      '',
      `<script>window.pwned = "script"</script>`,
      `<img src="${hub0}${LEAK}img" onerror="window.pwned = 'onerror'">`,
      `![tracker](${hub0}${LEAK}markdown-image.png)`,
      `<svg onload="window.pwned = 'svg'"><image href="${hub0}${LEAK}svg-image"/></svg>`,
      `<iframe src="${hub0}${LEAK}iframe"></iframe>`,
      `<style>@import url("${hub0}${LEAK}css"); body { background: url("${hub0}${LEAK}css-bg") }</style>`,
      `<p style="background:url('${hub0}${LEAK}style-attr')">styled</p>`,
      `[click me](javascript:window.pwned='javascript-link')`,
      `<a href="javascript:window.pwned='raw-link'">raw link</a>`,
      `<object data="${hub0}${LEAK}object"></object>`,
    ].join('\n');
    const stats = { promptTokens: 100, generatedTokens: 20, tokensSeen: 120, cacheRows: 120, cacheCapacity: 512, cacheBytes: 30_000, compressions: 0, compressMs: 0, maxPosition: 119, effectiveRatio: 1, prefillTokensPerSecond: 1000, decodeTokensPerSecond: 10, timeToFirstTokenMs: 100, prefillMs: 100, decodeMs: 2000 };
    await frame.evaluate(
      ({ markdown, stats }) => {
        window.postMessage({ type: 'answerStarted', question: 'Where is the lamp lit? (a crafted answer)' }, '*');
        window.postMessage({ type: 'files', included: [{ path: 'src/lamp.ts', tokens: 30 }], skipped: [] }, '*');
        window.postMessage({ type: 'engineEvent', event: { kind: 'done', reason: 'eos', text: markdown, stats } }, '*');
      },
      { markdown, stats },
    );
    const turn = frame.locator('.turn').last();
    await turn.locator('.code-block').waitFor({ timeout: 15_000 });
    const answer = turn.locator('.answer');
    // Rendered Markdown: the fenced block with its language, the list, the table.
    expect(await answer.locator('.code-language').innerText()).toBe('ts');
    expect(await answer.locator('ol > li > ul > li').innerText()).toBe('nested');
    expect(await answer.locator('table td').first().innerText()).toBe('src/lamp.ts');
    // Hostile markup is text or gone: no element that runs or loads anything, no javascript: link.
    expect(await answer.locator('script, img, svg, iframe, style, object, embed, [style], [onerror], [onload]').count()).toBe(0);
    expect(await answer.locator('a[href^="javascript"]').count()).toBe(0);
    await answer.locator('p').last().scrollIntoViewIfNeeded();
    await screenshot('10-hostile-output-inert');
    await answer.locator('.code-block').scrollIntoViewIfNeeded();

    // Copy puts the code on the clipboard (through the extension: vscode.env.clipboard).
    await answer.locator('.code-copy').click();
    await frame.waitForFunction(() => document.querySelector('.turn:last-of-type .code-copy')?.textContent === 'Copied', undefined, { timeout: 10_000 });
    await screenshot('08-code-block-copied');
    const deadline = Date.now() + 10_000;
    let clipboard = '';
    while (Date.now() < deadline && !clipboard.includes('lightTheLamp')) {
      clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch(() => '');
      await page.waitForTimeout(250);
    }
    expect(clipboard).toBe('export const lit = lightTheLamp("Lily");\n');

    // The file reference opens the file at its line.
    await answer.locator('a.file-link', { hasText: 'src/lamp.ts:2' }).click();
    await page.locator('.tab.active', { hasText: 'lamp.ts' }).waitFor({ timeout: 30_000 });
    await page.locator('.statusbar-item', { hasText: /Ln 2, Col 1/ }).first().waitFor({ timeout: 15_000 });
    await screenshot('09-file-link-opened');

    // After all that, nothing ran and nothing was fetched.
    await page.waitForTimeout(1000);
    expect(await frame.evaluate(() => (window as unknown as { pwned?: string }).pwned)).toBeUndefined();
    expect(hub.requests.filter((r) => r.url.includes(LEAK))).toEqual([]);
  });

  it('Download Model fetches a model with a progress notification, and Use This Model switches Ask to it', async () => {
    // Away from the status bar: its hover would cover the notification toasts.
    await page.mouse.move(600, 300);
    await page.keyboard.press('Escape');
    await runCommand('FreqKV: Download Model');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Qwen2.5-Coder-0.5B-Instruct' }).first().waitFor({ timeout: 30_000 });
    await page.keyboard.press('Enter');
    const use = page.locator('.notification-toast .monaco-button', { hasText: 'Use This Model' }).first();
    await use.waitFor({ timeout: 120_000 });
    expect(await page.locator('.notification-toast', { hasText: 'is ready' }).first().innerText()).toMatch(/Qwen2.5-Coder 0.5B Instruct is ready/);
    await screenshot('05-download-model');
    // The progress toast closes once the download is done; click when the toasts stop moving.
    await page.locator('.notification-toast', { hasText: 'downloading' }).first().waitFor({ state: 'hidden', timeout: 30_000 });
    await use.click();
    // Focus returns to the workbench once the toast has gone; a palette opened before that closes again.
    await page.locator('.notification-toast', { hasText: 'is ready' }).first().waitFor({ state: 'hidden', timeout: 30_000 });
    await page.waitForTimeout(500);
    expect(hub.requests.some((r) => r.url.includes('/resolve/main/onnx/model_q4.onnx'))).toBe(true);

    const frameBefore = await panelFrame();
    const answersBefore = await frameBefore.locator('.turn .answer').count();
    await runCommand('FreqKV: Ask About Workspace');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await page.waitForTimeout(300);
    await input.fill('What does lightTheLamp return?');
    await page.keyboard.press('Enter');
    const frame = await waitForAnswer(answersBefore);
    expect(await frame.locator('.error').allInnerTexts()).toEqual([]);
    // The notice that the embedded story model cannot answer about code is gone with it.
    expect(await frame.locator('#notice').isHidden()).toBe(true);
    await statusBarItem().hover();
    const tooltip = page.locator('.monaco-hover, .workbench-hover', { hasText: 'Cache rows' }).first();
    await tooltip.waitFor({ timeout: 15_000 });
    expect(await tooltip.innerText()).toMatch(/Model: .*Qwen2\.5-Coder-0\.5B-Instruct/);
    await screenshot('06-ask-with-downloaded-model');
  });
});
