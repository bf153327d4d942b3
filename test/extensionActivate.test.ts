// dist/extension.js under a stand-in for the vscode module (no VS Code here; the real-VS Code
// test is the e2e in code-server): activate registers every command package.json lists, the
// status bar starts at `KV –`, the chat view's HTML carries the CSP, Ask About Workspace
// streams an answer from the embedded model through the worker into the chat and the status
// bar (through its states), a follow-up sends the earlier turns, the chat's Copy, Insert and
// file links reach VS Code, and Download Model fetches a builder-made model from a stand-in
// hub on 127.0.0.1 (test/hubServer.ts). Only the API surface the extension uses is faked.

import * as fs from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import picomatch from 'picomatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostToWebviewMessage } from '../src/protocol';
import { tempDir } from './helpers';
import { buildHubRepo, buildSourceRepo, startHubServer, type HubServer } from './hubServer';

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
/** Every text the status bar item showed, in order. */
const statusTexts: string[] = [];
const status = {
  _text: '',
  get text(): string {
    return this._text;
  },
  set text(value: string) {
    this._text = value;
    statusTexts.push(value);
  },
  tooltip: '',
  command: '',
  name: '',
  backgroundColor: undefined as unknown,
  show: () => undefined,
  dispose: () => undefined,
};
const uri = (fsPath: string) => ({ scheme: 'file', fsPath, path: fsPath, toString: () => `vscode-resource:${fsPath}` });
const noop = () => ({ dispose: () => undefined });
/** Commands the extension ran (setContext, the chat view's focus). */
const executed: unknown[][] = [];
const clipboard: string[] = [];
const shownDocuments: { fsPath: string; selection?: { start: { line: number } } }[] = [];
/** The chat view's provider, resolved when the extension focuses the view, and what the view's webview received. */
let chatProvider: { resolveWebviewView(view: unknown): void } | undefined;
let chatViewResolved = false;
const chatListeners: ((message: unknown) => void)[] = [];
const chatPosted: HostToWebviewMessage[] = [];
/** The editor-tab chat's serializer: VS Code calls it with a panel it restored after a reload. */
let panelSerializer: { deserializeWebviewPanel(panel: unknown, state: unknown): Promise<void> } | undefined;

/**
 * A webview as VS Code hands one to the extension: it records its HTML, options and messages.
 * Like a real one, it receives nothing until its script has loaded and said 'ready' (here: a
 * moment after its HTML is set, or when the test calls the returned `ready` for `manualReady`).
 */
function fakeWebview(sink: HostToWebviewMessage[], listeners: ((message: unknown) => void)[] = [], manualReady?: { ready?: () => void }) {
  const sayReady = (): void => {
    for (const listener of listeners) listener({ type: 'ready' });
  };
  if (manualReady) manualReady.ready = sayReady;
  return {
    cspSource: 'vscode-resource:',
    asWebviewUri: (u: { fsPath: string }) => uri(u.fsPath),
    onDidReceiveMessage: (listener: (message: unknown) => void) => {
      listeners.push(listener);
      return noop();
    },
    postMessage: async (message: HostToWebviewMessage) => sink.push(message),
    set options(value: typeof panelOptions) {
      panelOptions = value;
    },
    set html(value: string) {
      panelHtml = value;
      if (!manualReady) setTimeout(sayReady, 0);
    },
  };
}

/** The chat view's webview posting a message to the extension, as its script does. */
function fromChat(message: unknown): void {
  for (const listener of chatListeners) listener(message);
}
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
  Disposable: class {
    constructor(private readonly run: () => void) {}
    dispose(): void {
      this.run();
    }
  },
  ThemeColor: class {
    constructor(readonly id: string) {}
  },
  Range: class {
    readonly start: { line: number; character: number };
    constructor(line: number, character: number) {
      this.start = { line, character };
    }
  },
  env: { clipboard: { writeText: async (text: string) => void clipboard.push(text) } },
  Uri: { file: uri, joinPath: (base: { fsPath: string }, ...parts: string[]) => uri(path.join(base.fsPath, ...parts)) },
  commands: {
    registerCommand: (id: string, run: Command) => {
      commands.set(id, run);
      return noop();
    },
    executeCommand: async (id: string, ...args: unknown[]) => {
      executed.push([id, ...args]);
      if (id === 'freqkv.chat.focus' && !chatViewResolved) {
        chatViewResolved = true;
        chatProvider!.resolveWebviewView({ webview: fakeWebview(chatPosted, chatListeners), show: () => undefined, onDidDispose: noop });
      }
      return commands.get(id)?.(...args);
    },
  },
  window: {
    activeTextEditor: undefined as unknown,
    createStatusBarItem: () => status,
    registerWebviewPanelSerializer: (_type: string, serializer: typeof panelSerializer) => {
      panelSerializer = serializer;
      return noop();
    },
    registerWebviewViewProvider: (_id: string, provider: typeof chatProvider) => {
      chatProvider = provider;
      return noop();
    },
    onDidChangeActiveTextEditor: noop,
    setStatusBarMessage: (m: string) => {
      messages.push(m);
      return noop();
    },
    showTextDocument: async (document: { fsPath: string } | { uri: { fsPath: string } }, options?: { selection?: { start: { line: number } } }) => {
      const fsPath = 'uri' in document ? document.uri.fsPath : document.fsPath;
      if (!fs.existsSync(fsPath)) throw new Error(`cannot open ${fsPath}`);
      shownDocuments.push({ fsPath, selection: options?.selection });
      return undefined;
    },
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
    createWebviewPanel: () => ({ webview: fakeWebview(posted), reveal: () => undefined, onDidDispose: noop, dispose: () => undefined }),
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
  hub = await startHubServer(
    { 'onnx-community/Qwen2.5-Coder-0.5B-Instruct': repo, 'onnx-community/Qwen2.5-Coder-1.5B-Instruct': repo, 'Qwen/Qwen2.5-Coder-0.5B-Instruct': await buildSourceRepo() },
    { lifetimeMs: 300_000 },
  );
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

  it('opens the chat in an editor tab too, and both receive what the extension posts', async () => {
    await commands.get('freqkv.openInEditor')!();
    expect(panelHtml).toContain('id="thread"');
    expect(panelHtml).not.toContain('id="open-in-editor"');
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
    // The turn is kept per workspace for the chat's next load, with its context and statistics.
    const done2 = done as Extract<HostToWebviewMessage, { type: 'engineEvent' }>;
    expect(workspaceState.get('freqkv.conversation')).toEqual([
      { question: 'Who is in the story?', answer: done2.event.kind === 'done' ? done2.event.text : '', context: { included: files.included, skipped: files.skipped }, stats: doneStats, earlierTurns: 0 },
    ]);
    // The chat view was opened and got the same messages as the editor tab; the status bar went through loading and answering.
    expect(executed).toContainEqual(['freqkv.chat.focus']);
    expect(chatPosted.filter((m) => m.type === 'engineEvent').length).toBe(posted.filter((m) => m.type === 'engineEvent').length);
    expect(statusTexts).toContain('$(loading~spin) KV loading model');
    expect(statusTexts.some((t) => /^\$\(loading~spin\) .* · answering$/.test(t))).toBe(true);
    expect(executed).toContainEqual(['setContext', 'freqkv.running', true]);
    expect(executed.at(-1)).toEqual(['setContext', 'freqkv.running', false]);
  });

  it('a follow-up question sends the earlier turns; New Chat forgets them', async () => {
    overrides.set('freqkv.mode', 'sequential');
    const before = posted.length;
    try {
      await commands.get('freqkv.ask')!();
      expect(posted.slice(before).find((m) => m.type === 'answerStarted')).toMatchObject({ question: 'Who is in the story?', earlierTurns: 1 });
      const done = posted.slice(before).find((m) => m.type === 'engineEvent' && m.event.kind === 'done') as Extract<HostToWebviewMessage, { type: 'engineEvent' }>;
      const first = posted.find((m) => m.type === 'engineEvent' && m.event.kind === 'done') as Extract<HostToWebviewMessage, { type: 'engineEvent' }>;
      // The earlier question and answer are in the prompt: it is longer than the first one by at least the earlier answer.
      expect(done.event.stats.promptTokens).toBeGreaterThan(first.event.stats.promptTokens + 10);
      expect((workspaceState.get('freqkv.conversation') as unknown[]).length).toBe(2);
      fromChat({ type: 'newChat' });
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(workspaceState.get('freqkv.conversation')).toEqual([]);
      expect(chatPosted.at(-1)).toEqual({ type: 'history', turns: [] });
    } finally {
      overrides.delete('freqkv.mode');
    }
  });

  it('a second question while one runs is refused with a way to cancel, and the running turn goes on', async () => {
    overrides.set('freqkv.mode', 'sequential');
    const before = posted.length;
    try {
      const first = commands.get('freqkv.ask')!() as Promise<void>;
      await new Promise((resolve) => setTimeout(resolve, 20));
      await commands.get('freqkv.ask')!();
      expect(messages.at(-1)).toMatch(/answering another question; cancel it first/);
      await first;
      const after = posted.slice(before);
      expect(after.filter((m) => m.type === 'answerStarted')).toHaveLength(1);
      expect(after.filter((m) => m.type === 'engineEvent' && m.event.kind === 'done')).toHaveLength(1);
      expect(status.text).toMatch(/^KV \d/);
    } finally {
      overrides.delete('freqkv.mode');
      await commands.get('freqkv.newChat')!();
    }
  });

  it('the chat\'s Copy, Insert at Cursor and file links reach VS Code; a link outside the workspace opens nothing', async () => {
    fromChat({ type: 'copy', text: 'const a = 1;' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(clipboard).toEqual(['const a = 1;']);
    const edits: [unknown, string][] = [];
    const document = { uri: uri(path.join(WORKSPACE, 'notes.md')) };
    const selections = [{ start: 0 }];
    fakeVscode.window.activeTextEditor = { document, selections, viewColumn: 1, edit: async (build: (e: { replace(s: unknown, t: string): void }) => void) => build({ replace: (at, text) => edits.push([at, text]) }) };
    try {
      fromChat({ type: 'insert', text: 'lamp();' });
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(edits).toEqual([[selections[0], 'lamp();']]);
    } finally {
      fakeVscode.window.activeTextEditor = undefined;
    }
    // Insert focused the editor it wrote into.
    expect(shownDocuments.splice(0).map((d) => path.relative(WORKSPACE, d.fsPath))).toEqual(['notes.md']);
    fromChat({ type: 'openFile', path: 'src/lighthouse.ts', line: 3 });
    fromChat({ type: 'openFile', path: '../outside.txt' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(shownDocuments.map((d) => [path.relative(WORKSPACE, d.fsPath), d.selection?.start.line])).toEqual([['src/lighthouse.ts', 2]]);
    expect(messages.at(-1)).toMatch(/\.\.\/outside\.txt is not a file in this workspace/);
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
      const before = posted.length;
      await commands.get('freqkv.ask')!();
      expect(messages.at(-1)).toMatch(/no files to read: all 2 were left out \(1 binary, 1 not-utf8\)/);
      fakeVscode.workspace.workspaceFolders = [{ name: 'empty', index: 0, uri: uri(empty) }];
      await commands.get('freqkv.ask')!();
      expect(messages.at(-1)).toMatch(/no files to read: the workspace has no files/);
      // Each question's turn ends with the engine's reason (the workspace index found no files), and nothing was generated.
      const after = posted.slice(before);
      expect(after.filter((m) => m.type === 'answerFailed').map((m) => m.type === 'answerFailed' && m.error.name)).toEqual(['NoWorkspaceFilesError', 'NoWorkspaceFilesError']);
      expect(after.some((m) => m.type === 'engineEvent')).toBe(false);
    } finally {
      fakeVscode.workspace.workspaceFolders = folders;
    }
  });

  it('a chat still loading its script gets, once ready, the earlier turns and then the whole answer it missed, in order, once', async () => {
    const restored: HostToWebviewMessage[] = [];
    const listeners: ((message: unknown) => void)[] = [];
    const held: { ready?: () => void } = {};
    const turnsBefore = (workspaceState.get('freqkv.conversation') as unknown[] | undefined) ?? [];
    await panelSerializer!.deserializeWebviewPanel({ webview: fakeWebview(restored, listeners, held), reveal: () => undefined, onDidDispose: noop, dispose: () => undefined }, undefined);
    overrides.set('freqkv.mode', 'sequential');
    try {
      await commands.get('freqkv.ask')!();
    } finally {
      overrides.delete('freqkv.mode');
    }
    // A real webview drops what comes before its listener: nothing was sent while it loaded.
    expect(restored).toEqual([]);
    held.ready!();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(restored[0]).toEqual({ type: 'history', turns: turnsBefore });
    expect(restored.filter((m) => m.type === 'answerStarted')).toHaveLength(1);
    const started = restored.findIndex((m) => m.type === 'answerStarted');
    const done = restored.findIndex((m) => m.type === 'engineEvent' && m.event.kind === 'done');
    expect(started).toBeGreaterThan(0);
    expect(done).toBeGreaterThan(started);
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

  it('Download Model offers the original weights built here: build-int4 in the build worker, into <name>-build-int4', async () => {
    pickIndex = 2;
    const before = progressMessages.length;
    try {
      const expected = path.join(globalStorage, 'models', 'Qwen2.5-Coder-0.5B-Instruct-build-int4');
      expect(await commands.get('freqkv.downloadModel')!()).toBe(expected);
      expect(progressMessages.slice(before)).toContain('building the model from model.safetensors…');
      expect(fs.readdirSync(path.join(expected, 'onnx'))).toContain('model.onnx');
      expect(fs.existsSync(path.join(expected, 'model.safetensors'))).toBe(false);
      const manifest = JSON.parse(fs.readFileSync(path.join(expected, 'freqkv-download.json'), 'utf8')) as { variant: string; build: { options: { weights: string } } };
      expect(manifest.variant).toBe('build-int4');
      expect(manifest.build.options.weights).toBe('int4');
      expect(messages.at(-1)).toMatch(/Qwen2.5-Coder 0.5B Instruct, built from the original weights is ready/);
    } finally {
      pickIndex = 0;
    }
  });
});
