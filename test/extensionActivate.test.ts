// dist/extension.js under a stand-in for the vscode module (no VS Code here; the real-VS Code
// test is the e2e in code-server): activate registers every command package.json lists, the
// status bar starts at `KV –`, the panel's HTML carries the CSP, and Ask About Workspace
// streams an answer from the embedded model through the worker into the panel and the
// status bar, and Download Model fetches a builder-made model from a stand-in hub on
// 127.0.0.1 (test/hubServer.ts). Only the API surface the extension uses is faked.

import * as fs from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import picomatch from 'picomatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostToWebviewMessage } from '../src/protocol';
import { tempDir } from './helpers';
import { buildHubRepo, startHubServer, type HubServer } from './hubServer';

const ROOT = path.resolve(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  contributes: { commands: { command: string }[]; keybindings: { command: string }[]; menus: Record<string, { command: string }[]>; configuration: { properties: Record<string, { default: unknown }> } };
};

type Command = (...args: unknown[]) => unknown;
const commands = new Map<string, Command>();
const posted: HostToWebviewMessage[] = [];
const messages: string[] = [];
const progressMessages: string[] = [];
/** Settings a test sets, by full name (e.g. freqkv.modelPath). */
const overrides = new Map<string, unknown>();
const errorActions: string[][] = [];
const infoLog: string[] = [];
/** The file watcher's listeners, fired by tests as VS Code would on a change. */
const watcherListeners: ((changed: { fsPath: string }) => void)[] = [];
let panelHtml = '';
let panelOptions: { localResourceRoots?: { fsPath: string }[] } = {};
const status = { text: '', tooltip: '', command: '', name: '', show: () => undefined, dispose: () => undefined };
const uri = (fsPath: string) => ({ scheme: 'file', fsPath, path: fsPath, toString: () => `vscode-resource:${fsPath}` });
const noop = () => ({ dispose: () => undefined });
const settingUpdates: [string, unknown, unknown][] = [];
const progressReports: { increment?: number; message?: string }[] = [];
let hub: HubServer | undefined;
/** Which QuickPick item the stand-in picks, and a progress message on which it presses Cancel. */
let pickIndex = 0;
let cancelWhen: RegExp | undefined;
const globalStorage = tempDir('global-storage');

// A real folder on disk as the workspace: a source file, a note, a binary file, a file
// .gitignore names, and a log file files.exclude hides.
const WORKSPACE = tempDir('freqkv-ext-ws-');
fs.mkdirSync(path.join(WORKSPACE, 'src'));
fs.writeFileSync(path.join(WORKSPACE, 'src', 'lighthouse.ts'), 'export const keeper = "Lily";\nexport function lamp(): string {\n  return "on";\n}\n');
fs.writeFileSync(path.join(WORKSPACE, 'notes.md'), 'Lily kept the lighthouse lamp on every night.\n');
fs.writeFileSync(path.join(WORKSPACE, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13, 1, 2, 3]));
fs.writeFileSync(path.join(WORKSPACE, '.gitignore'), 'secret.txt\n');
fs.writeFileSync(path.join(WORKSPACE, 'secret.txt'), 'the password\n');
fs.writeFileSync(path.join(WORKSPACE, 'debug.log'), 'a log line\n');
const FILES_EXCLUDE = { '**/*.log': true, '**/.git': true };

/** findFiles over the real folder: the include pattern relative to its base, the exclude glob as VS Code takes it. */
function findFiles(include: { base: string; pattern: string }, exclude: string): { fsPath: string; path: string }[] {
  const included = picomatch(include.pattern, { dot: true });
  // VS Code takes one glob with top-level braces; picomatch wants the alternatives as a list.
  const excluded = picomatch(exclude.replace(/^\{|\}$/g, '').split(','), { dot: true });
  const found: { fsPath: string; path: string }[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(include.base, full).split(path.sep).join('/');
      if (entry.isDirectory()) walk(full);
      else if (included(rel) && !excluded(rel)) found.push(uri(full));
    }
  };
  walk(include.base);
  return found;
}

const fakeVscode = {
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { Notification: 15 },
  FileType: { File: 1, Directory: 2 },
  RelativePattern: class {
    readonly base: string;
    constructor(
      folder: { uri: { fsPath: string } },
      readonly pattern: string,
    ) {
      this.base = folder.uri.fsPath;
    }
  },
  ViewColumn: { Beside: -2 },
  ConfigurationTarget: { Global: 1 },
  Uri: { file: uri, joinPath: (base: { fsPath: string }, ...parts: string[]) => uri(path.join(base.fsPath, ...parts)) },
  commands: {
    registerCommand: (id: string, run: Command) => {
      commands.set(id, run);
      return noop();
    },
  },
  window: {
    activeTextEditor: undefined,
    createStatusBarItem: () => status,
    registerWebviewPanelSerializer: noop,
    createOutputChannel: () => ({ info: (m: string) => void infoLog.push(m), warn: () => undefined, error: (m: string) => messages.push(m), dispose: () => undefined }),
    showInputBox: async () => 'Who is in the story?',
    showInformationMessage: async (m: string, ...items: string[]) => {
      messages.push(m);
      return items.includes('Use This Model') ? 'Use This Model' : undefined;
    },
    showQuickPick: async <T>(items: T[]) => items[pickIndex],
    withProgress: async <T>(_options: unknown, task: (progress: unknown, token: unknown) => Promise<T>) => {
      const listeners: (() => void)[] = [];
      const token = {
        isCancellationRequested: false,
        onCancellationRequested: (listener: () => void) => {
          listeners.push(listener);
          return { dispose: () => undefined };
        },
      };
      const progress = {
        report: (r: (typeof progressReports)[number]) => {
          progressReports.push(r);
          if (r.message) progressMessages.push(r.message);
          if (cancelWhen?.test(r.message ?? '') && !token.isCancellationRequested) {
            token.isCancellationRequested = true;
            for (const listener of listeners) listener();
          }
        },
      };
      return task(progress, token);
    },
    showWarningMessage: async (m: string) => void messages.push(m),
    showErrorMessage: async (m: string, ...actions: string[]) => {
      messages.push(m);
      errorActions.push(actions);
      return undefined;
    },
    createWebviewPanel: (_type: string, _title: string, _column: unknown, options: typeof panelOptions) => {
      panelOptions = options;
      const webview = {
        cspSource: 'vscode-resource:',
        asWebviewUri: (u: { fsPath: string }) => uri(u.fsPath),
        onDidReceiveMessage: noop,
        postMessage: async (message: HostToWebviewMessage) => posted.push(message),
        set html(value: string) {
          panelHtml = value;
        },
      };
      return { webview, reveal: () => undefined, onDidDispose: noop };
    },
  },
  workspace: {
    getConfiguration: (section: string) => ({
      get: <T>(key: string, fallback: T): T =>
        overrides.has(`${section}.${key}`)
          ? (overrides.get(`${section}.${key}`) as T)
          : section === 'files' && key === 'exclude'
            ? (FILES_EXCLUDE as T)
            : key === 'maxNewTokens'
              ? (30 as T)
              : key === 'cache.capacity'
                ? (48 as T)
                : key === 'huggingFaceEndpoint' && hub
                  ? (hub.endpoint as T)
                  : fallback,
      update: async (key: string, value: unknown, target: unknown) => void settingUpdates.push([key, value, target]),
    }),
    onDidChangeConfiguration: noop,
    createFileSystemWatcher: () => {
      const listen = (listener: () => void) => {
        watcherListeners.push(listener);
        return noop();
      };
      return { onDidChange: listen, onDidCreate: listen, onDidDelete: listen, dispose: () => undefined };
    },
    asRelativePath: (u: { fsPath: string }) => path.relative(WORKSPACE, u.fsPath),
    workspaceFolders: [{ name: 'ws', index: 0, uri: uri(WORKSPACE) }],
    findFiles: async (include: { base: string; pattern: string }, exclude: string) => findFiles(include, exclude),
    fs: {
      stat: async (u: { fsPath: string }) => {
        const stat = fs.statSync(u.fsPath);
        return { type: stat.isFile() ? 1 : 2, size: stat.size };
      },
      readFile: async (u: { fsPath: string }) => new Uint8Array(fs.readFileSync(u.fsPath)),
      delete: async (u: { fsPath: string }) => fs.rmSync(u.fsPath, { recursive: true }),
    },
  },
};

interface Loader {
  _load(request: string, parent: unknown, isMain: boolean): unknown;
}
const loader = Module as unknown as Loader;
const originalLoad = loader._load;
let extension: { activate(context: unknown): void };
const subscriptions: { dispose(): unknown }[] = [];
const workspaceState = new Map<string, unknown>();

beforeAll(async () => {
  const repo = buildHubRepo();
  hub = await startHubServer({ 'onnx-community/Qwen2.5-Coder-0.5B-Instruct': repo, 'onnx-community/Qwen2.5-Coder-1.5B-Instruct': repo }, { lifetimeMs: 300_000 });
  loader._load = function (request, parent, isMain) {
    if (request === 'vscode') return fakeVscode;
    return originalLoad.call(this, request, parent, isMain);
  };
  extension = Module.createRequire(__filename)(path.join(ROOT, 'dist', 'extension.js')) as typeof extension;
  extension.activate({
    extensionPath: ROOT,
    extensionUri: uri(ROOT),
    globalStorageUri: uri(globalStorage),
    subscriptions,
    workspaceState: {
      get: <T>(key: string, fallback: T): T => (workspaceState.has(key) ? (workspaceState.get(key) as T) : fallback),
      update: async (key: string, value: unknown) => void workspaceState.set(key, value),
    },
  });
});
afterAll(async () => {
  loader._load = originalLoad;
  for (const subscription of subscriptions) await subscription.dispose();
  await hub?.close();
});

describe('the extension under a stand-in vscode', () => {
  it('registers exactly the commands package.json contributes, and menus and keybindings name them', () => {
    const contributed = manifest.contributes.commands.map((c) => c.command).sort();
    expect([...commands.keys()].sort()).toEqual(contributed);
    for (const binding of manifest.contributes.keybindings) expect(contributed).toContain(binding.command);
    for (const items of Object.values(manifest.contributes.menus)) for (const item of items) expect(contributed).toContain(item.command);
    expect(manifest.contributes.keybindings.map((b) => b.command).sort()).toEqual(['freqkv.ask', 'freqkv.cancel']);
  });

  it('shows the status bar item before any generation', () => {
    expect(status.text).toBe('KV –');
    expect(status.command).toBe('freqkv.showStats');
  });

  it('Ask About Workspace (sequential mode) streams an answer into the panel and the status bar', async () => {
    overrides.set('freqkv.mode', 'sequential');
    try {
      await commands.get('freqkv.ask')!();
    } finally {
      overrides.delete('freqkv.mode');
    }
    expect(panelHtml).toContain(`default-src 'none'`);
    expect(panelHtml).toMatch(/<script nonce="[^"]+" src="[^"]*dist\/webview.js">/);
    expect(panelHtml).not.toMatch(/<script(?! nonce)/);
    expect(panelOptions.localResourceRoots?.map((r) => path.basename(r.fsPath)).sort()).toEqual(['dist', 'media']);
    expect(posted.find((m) => m.type === 'answerStarted')).toMatchObject({ question: 'Who is in the story?' });
    expect(posted.find((m) => m.type === 'notice')).toBeDefined();
    const done = posted.find((m) => m.type === 'engineEvent' && m.event.kind === 'done');
    expect(done).toMatchObject({ event: { reason: 'max-tokens', stats: { generatedTokens: 30, cacheCapacity: 48 } } });
    expect(status.text).toMatch(/^KV \d+(\.\d)? (B|kB|MB) · \d+\.\d×$/);
    expect(status.tooltip).toContain('Cache rows:');
    expect(messages.filter((m) => /Error/.test(m))).toEqual([]);
    // The workspace went in through VS Code's API: .gitignore, files.exclude and binary files are left out, with why.
    const files = posted.find((m) => m.type === 'files') as Extract<HostToWebviewMessage, { type: 'files' }>;
    expect(files.included.map((f) => f.path)).toEqual(['.gitignore', 'notes.md', 'src/lighthouse.ts']);
    expect(files.included.every((f) => f.tokens > 0)).toBe(true);
    expect(files.skipped).toEqual([
      { path: 'logo.png', reason: 'binary (NUL bytes)' },
      { path: 'secret.txt', reason: 'ignored by .gitignore' },
    ]);
    expect(files.included.map((f) => f.path)).not.toContain('debug.log');
    const doneStats = (done as Extract<HostToWebviewMessage, { type: 'engineEvent' }>).event.stats;
    expect(doneStats.promptTokens).toBeGreaterThan(files.included.reduce((n, f) => n + f.tokens, 0));
    expect(progressMessages.at(-1) ?? '').toMatch(/files seen, \d+ included, [\d,]+ tokens/);
    // The turn is kept per workspace for the panel's next load.
    const done2 = done as Extract<HostToWebviewMessage, { type: 'engineEvent' }>;
    expect(workspaceState.get('freqkv.conversation')).toEqual([{ question: 'Who is in the story?', answer: done2.event.kind === 'done' ? done2.event.text : '' }]);
  });

  it('Ask About Workspace (segmented, the default) answers first, indexes the rest in the background, and lists each file at its resolution', async () => {
    overrides.set('freqkv.cache.capacity', 256);
    const before = posted.length;
    const segmentFiles = (): number => fs.readdirSync(path.join(globalStorage, 'segments'), { recursive: true }).filter((f) => String(f).endsWith('.seg')).length;
    const waitFor = async (what: () => boolean): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    };
    try {
      await commands.get('freqkv.ask')!();
      const after = posted.slice(before);
      const lists = after.filter((m): m is Extract<HostToWebviewMessage, { type: 'files' }> => m.type === 'files');
      // What the assembled cache holds, each file with its rows; the relevant file was prefilled for the answer.
      expect(lists).toHaveLength(1);
      expect(lists[0]!.included.map((f) => f.path)).toContain('notes.md');
      for (const f of lists[0]!.included) expect(f.rows).toBeGreaterThan(0);
      const done = after.find((m) => m.type === 'engineEvent' && m.event.kind === 'done') as Extract<HostToWebviewMessage, { type: 'engineEvent' }>;
      expect(done.event.stats.tokensSeen).toBeGreaterThan(lists[0]!.included.reduce((n, f) => n + f.tokens, 0));
      // The rest is indexed in the background; its end is logged and shown in the status bar.
      await waitFor(() => infoLog.some((m) => /^Workspace index: 3\/3 files.*done\./.test(m)));
      expect(status.text).toMatch(/KV|Indexed 3 files/);
      expect(segmentFiles()).toBe(3);
      // A second question uses every stored segment and prefills nothing.
      await commands.get('freqkv.ask')!();
      expect(infoLog.at(-1)).toMatch(/3\/3 files indexed; 0 prefilled for this answer, 3 reused/);
      // An edited file: the watcher sends its path; the next question reads and prefills only it.
      fs.appendFileSync(path.join(WORKSPACE, 'notes.md'), 'The cat slept by the lamp.\n');
      for (const listener of watcherListeners) listener(uri(path.join(WORKSPACE, 'notes.md')));
      await new Promise((r) => setTimeout(r, 1300));
      await commands.get('freqkv.ask')!();
      expect(infoLog.filter((m) => m.startsWith('Workspace index:')).at(-1)).toMatch(/1 prefilled for this answer, 2 reused/);
      // Clear Cache removes this workspace's index and segments.
      await commands.get('freqkv.clearCache')!();
      expect(messages.at(-1)).toMatch(/cleared the cache statistics and this workspace's index \(\d+ segments\)/);
      expect(segmentFiles()).toBe(0);
    } finally {
      overrides.delete('freqkv.cache.capacity');
    }
  });

  it('Ask About Workspace in a workspace with no readable files says so and asks nothing', async () => {
    const onlyBinary = tempDir('freqkv-ext-binary-');
    fs.writeFileSync(path.join(onlyBinary, 'a.bin'), Buffer.from([1, 0, 2, 0]));
    fs.writeFileSync(path.join(onlyBinary, 'b.dat'), Buffer.from([0xff, 0xfe, 0xfd]));
    const empty = tempDir('freqkv-ext-empty-');
    const folders = fakeVscode.workspace.workspaceFolders;
    try {
      fakeVscode.workspace.workspaceFolders = [{ name: 'bin', index: 0, uri: uri(onlyBinary) }];
      const started = posted.filter((m) => m.type === 'answerStarted').length;
      await commands.get('freqkv.ask')!();
      expect(messages.at(-1)).toMatch(/no files to read: all 2 were left out \(1 binary, 1 not-utf8\)/);
      fakeVscode.workspace.workspaceFolders = [{ name: 'empty', index: 0, uri: uri(empty) }];
      await commands.get('freqkv.ask')!();
      expect(messages.at(-1)).toMatch(/no files to read: the workspace has no files/);
      expect(posted.filter((m) => m.type === 'answerStarted').length).toBe(started);
    } finally {
      fakeVscode.workspace.workspaceFolders = folders;
    }
  });

  it('Summarize File refuses binary, not-UTF-8 and oversized files with a reason, reading none of the big one', async () => {
    await commands.get('freqkv.summarizeFile')!(uri(path.join(WORKSPACE, 'logo.png')));
    expect(messages.at(-1)).toMatch(/logo.png cannot be summarized: it is binary/);
    const latin1 = path.join(WORKSPACE, 'latin1.txt');
    fs.writeFileSync(latin1, Buffer.from('caf\xe9 cr\xe8me\n', 'latin1'));
    await commands.get('freqkv.summarizeFile')!(uri(latin1));
    expect(messages.at(-1)).toMatch(/latin1.txt cannot be summarized: it is not valid UTF-8/);
    const big = path.join(WORKSPACE, 'big.txt');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, 50 * 1024 * 1024);
    await commands.get('freqkv.summarizeFile')!(uri(big));
    expect(messages.at(-1)).toMatch(/big.txt is 52,428,800 bytes, larger than freqkv.maxFileBytes/);
    fs.rmSync(big);
    fs.rmSync(latin1);
  });

  it('Summarize File streams a summary of a real file through the worker', async () => {
    const before = posted.length;
    await commands.get('freqkv.summarizeFile')!(uri(path.join(WORKSPACE, 'notes.md')));
    const after = posted.slice(before);
    expect(after.find((m) => m.type === 'answerStarted')).toMatchObject({ question: 'Summarize notes.md' });
    expect(after.find((m) => m.type === 'engineEvent' && m.event.kind === 'done')).toMatchObject({ event: { reason: 'max-tokens' } });
  });

  it('a missing or corrupt model folder is an error with a button to choose another model', async () => {
    const corrupt = tempDir('freqkv-ext-corrupt-model-');
    fs.cpSync(path.join(ROOT, 'models', 'stories260K'), corrupt, { recursive: true });
    fs.writeFileSync(path.join(corrupt, 'onnx', 'model.onnx'), 'not an onnx file');
    try {
      for (const [folder, expected] of [
        [path.join(WORKSPACE, 'no-such-model'), /ModelNotFound|does not exist|not found/i],
        [corrupt, /corrupt|not an ONNX|truncated/i],
      ] as const) {
        overrides.set('freqkv.modelPath', folder);
        const before = messages.length;
        await commands.get('freqkv.summarizeFile')!(uri(path.join(WORKSPACE, 'notes.md')));
        const shown = messages.slice(before).join('\n');
        expect(shown).toMatch(expected);
        expect(errorActions.at(-1)).toEqual(['Choose Model']);
      }
    } finally {
      overrides.delete('freqkv.modelPath');
    }
    // Back on the embedded model, the next request works.
    const before = posted.length;
    await commands.get('freqkv.summarizeFile')!(uri(path.join(WORKSPACE, 'notes.md')));
    expect(posted.slice(before).find((m) => m.type === 'engineEvent' && m.event.kind === 'done')).toBeDefined();
  });

  it('Download Model fetches the picked model into global storage with progress and offers to use it', async () => {
    expect(manifest.contributes.configuration.properties['freqkv.huggingFaceEndpoint']?.default).toBe('https://huggingface.co');
    const dir = await commands.get('freqkv.downloadModel')!();
    const expected = path.join(globalStorage, 'models', 'Qwen2.5-Coder-0.5B-Instruct');
    expect(dir).toBe(expected);
    expect(fs.readdirSync(path.join(expected, 'onnx')).sort()).toEqual(['model_q4.onnx', 'model_q4.onnx_data']);
    expect(hub?.requests.some((r) => r.url.startsWith('/api/models/onnx-community/Qwen2.5-Coder-0.5B-Instruct/tree/main'))).toBe(true);
    expect(progressReports.some((r) => /of .* · file \d+\/7: onnx\/model_q4\.onnx_data/.test(r.message ?? ''))).toBe(true);
    expect(progressReports.reduce((sum, r) => sum + (r.increment ?? 0), 0)).toBeCloseTo(100, 5);
    expect(messages.at(-1)).toMatch(/Qwen2.5-Coder 0.5B Instruct is ready/);
    expect(settingUpdates).toContainEqual(['modelPath', expected, 1]);
  });

  it('Cancel in the progress notification keeps the partial download; the next Download Model resumes it', async () => {
    pickIndex = 1;
    cancelWhen = /onnx\/model_q4\.onnx_data/;
    hub!.behaviour.chunkBytes = 1024;
    hub!.behaviour.chunkDelayMs = 20;
    const expected = path.join(globalStorage, 'models', 'Qwen2.5-Coder-1.5B-Instruct');
    try {
      expect(await commands.get('freqkv.downloadModel')!()).toBeUndefined();
      expect(messages.at(-1)).toMatch(/cancelled during onnx\/model_q4\.onnx_data; what was downloaded is kept/);
      expect(fs.existsSync(expected)).toBe(false);
      expect(fs.existsSync(path.join(`${expected}.partial`, 'config.json'))).toBe(true);
      cancelWhen = undefined;
      delete hub!.behaviour.chunkDelayMs;
      hub!.requests.length = 0;
      expect(await commands.get('freqkv.downloadModel')!()).toBe(expected);
      expect(hub!.requests.some((r) => r.url.endsWith('/config.json'))).toBe(false);
      expect(settingUpdates).toContainEqual(['modelPath', expected, 1]);
    } finally {
      pickIndex = 0;
      cancelWhen = undefined;
      delete hub!.behaviour.chunkBytes;
      delete hub!.behaviour.chunkDelayMs;
    }
  });
});
