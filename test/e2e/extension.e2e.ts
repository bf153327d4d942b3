// The extension in a real VS Code: the packaged .vsix installed into code-server, driven by
// Debian's headless Chromium through playwright-core, the way a person uses it: F1, a command's
// title, Enter. It asks about a fixture workspace and summarizes a file longer than the
// embedded model's context, and checks that the answer streams into the webview, that the
// statistics show compressions, and that the status bar shows the cache memory. Screenshots go
// to test/e2e/screenshots/. Run with `npm run test:e2e` (it installs what it needs first).

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

/** The FreqKV panel's document: the webview is an iframe inside an iframe. */
async function panelFrame(): Promise<Frame> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (await frame.$('#conversation').catch(() => null)) return frame;
    }
    await page.waitForTimeout(250);
  }
  throw new Error('The FreqKV panel did not appear within 60 s.');
}

/** Waits until the panel's latest answer is done (the Ask button is enabled again) and returns the panel. */
async function waitForAnswer(answersBefore: number): Promise<Frame> {
  const frame = await panelFrame();
  await frame.waitForFunction((before) => document.querySelectorAll('.answer').length > before, answersBefore, { timeout: 120_000 });
  await frame.waitForFunction(() => !(document.getElementById('ask') as HTMLButtonElement).disabled, undefined, { timeout: 300_000 });
  return frame;
}

async function statValue(frame: Frame, label: string): Promise<string> {
  return frame.evaluate((wanted) => {
    const terms = Array.from(document.querySelectorAll('#stats dt'));
    const term = terms.find((t) => t.textContent === wanted);
    return term?.nextElementSibling?.textContent ?? '';
  }, label);
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
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
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
  it('activates from the .vsix and shows its status bar item', async () => {
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
    const answer = await frame.locator('.answer').last().innerText();
    expect(answer.trim().length).toBeGreaterThan(0);
    const filesSummary = await frame.locator('#files summary').innerText();
    expect(filesSummary).toMatch(/Context: 3 files, [\d,]+ tokens; 2 left out/);
    // Segmented mode (the default): each file was prefilled on its own (the story compressed by
    // FreqKV) and the cache was assembled from the stored segments: rows stand for many tokens.
    await frame.locator('#files').evaluate((details) => ((details as HTMLDetailsElement).open = true));
    expect(await frame.locator('#files').textContent()).toMatch(/long-story\.md — [\d,]+ tokens, \d+ of \d+ rows/);
    expect(Number.parseFloat(await statValue(frame, 'Effective ratio'))).toBeGreaterThan(2);
    expect(await statusBarItem().innerText()).toMatch(/KV [\d.]+ (B|kB|MB) · [\d.]+×/);
    await screenshot('02-ask-about-workspace');
  });

  it('Summarize File on a file longer than the model context streams a summary with compressions', async () => {
    const frameBefore = await panelFrame();
    const answersBefore = await frameBefore.locator('.answer').count();
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
    expect(await frame.locator('#files summary').innerText()).toMatch(/Context: 1 file, [\d,]+ tokens; 0 left out/);
    expect((await frame.locator('.answer').last().innerText()).trim().length).toBeGreaterThan(0);
    const rows = await statValue(frame, 'Tokens seen');
    expect(Number.parseInt(rows, 10)).toBeGreaterThan(512);
    expect(Number.parseInt(await statValue(frame, 'Compressions'), 10)).toBeGreaterThan(0);
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
    expect(await statValue(frame, 'Cache rows')).toMatch(/^\d+ \/ \d+$/);
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
    const answersBefore = await frameBefore.locator('.answer').count();
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
