// The extension's handle on the engine worker (dist/worker.js): typed async methods for the
// protocol's requests, and generations as async iterables of EngineEvents. No vscode import,
// so it is tested in plain node. A worker that dies (a native crash, an out-of-memory) fails
// the requests in flight with WorkerCrashedError; the next request starts a fresh worker and
// reloads the last model before it runs.

import { Worker } from 'node:worker_threads';
import {
  EngineRequestError,
  type AskParams,
  type EngineEvent,
  type GenerateParams,
  type GenerationResult,
  type IndexStatus,
  type LoadModelParams,
  type ModelInfo,
  type ParamsOf,
  type ResultOf,
  type StatsReply,
  type SummarizeParams,
  type WorkerRequestMessage,
  type WorkerRequestName,
  type WorkerToHostMessage,
  type WorkspaceSpec,
} from '../protocol';

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
  onEvent?(event: EngineEvent): void;
}

export class EngineClient {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** The last model loaded successfully, reloaded into a restarted worker. */
  private lastModel: LoadModelParams | undefined;
  private restarts = 0;
  private readonly indexListeners: ((status: IndexStatus) => void)[] = [];
  private disposing: Promise<void> | undefined;

  /** `workerPath`: the bundled worker, e.g. path.join(extensionPath, 'dist', 'worker.js'). */
  constructor(private readonly workerPath: string) {}

  /** How many times a crashed worker was replaced. */
  get restartCount(): number {
    return this.restarts;
  }

  async loadModel(params: LoadModelParams): Promise<ModelInfo> {
    const info = await this.request('loadModel', params);
    this.lastModel = params;
    return info;
  }

  /**
   * Runs a generation; `onEvent` sees prefill progress, every token and done, as they come.
   * Resolves when the generation ends (also when cancelled: reason 'cancelled').
   */
  generate(params: GenerateParams, onEvent?: (event: EngineEvent) => void): Promise<GenerationResult> {
    return this.request('generate', params, onEvent);
  }

  /** Ask About Workspace: the worker builds the prompt from the files and the question. */
  ask(params: AskParams, onEvent?: (event: EngineEvent) => void): Promise<GenerationResult> {
    return this.request('ask', params, onEvent);
  }

  /** Starts or resumes background indexing of the workspace (the worker runs it when idle). */
  async startIndexing(spec: WorkspaceSpec): Promise<boolean> {
    return (await this.request('startIndexing', spec)).started;
  }

  /** Pauses background indexing; resolves once it has stopped (what is indexed is kept). */
  async stopIndexing(): Promise<boolean> {
    if (!this.worker) return false;
    return (await this.request('stopIndexing', {})).stopped;
  }

  /** A file watcher's changed paths; the next refresh reads only those. */
  async workspaceChanged(paths: string[]): Promise<void> {
    if (!this.worker) return;
    await this.request('workspaceChanged', { paths });
  }

  /** Background indexing progress, as the worker posts it. */
  onIndexStatus(listener: (status: IndexStatus) => void): void {
    this.indexListeners.push(listener);
  }

  /** Summarize File: the worker builds the summary prompt for the file. */
  summarize(params: SummarizeParams, onEvent?: (event: EngineEvent) => void): Promise<GenerationResult> {
    return this.request('summarize', params, onEvent);
  }

  /** Tokens of `text` with the loaded model's tokenizer; works while a generation runs. */
  async countTokens(text: string): Promise<number> {
    return (await this.request('countTokens', { text })).tokens;
  }

  /** The same generation as an async iterable of events; the last one is `done`. Errors are thrown. */
  async *stream(params: GenerateParams): AsyncGenerator<EngineEvent, GenerationResult> {
    const queue: EngineEvent[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: Error | undefined;
    const result = this.generate(params, (event) => {
      queue.push(event);
      wake?.();
    });
    let outcome: GenerationResult | undefined;
    result.then(
      (value) => {
        outcome = value;
        finished = true;
        wake?.();
      },
      (error: Error) => {
        failure = error;
        finished = true;
        wake?.();
      },
    );
    for (;;) {
      const event = queue.shift();
      if (event) {
        yield event;
        continue;
      }
      if (finished) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    if (failure) throw failure;
    return outcome!;
  }

  /** Stops the running generation; resolves to whether one was running. */
  async cancel(): Promise<boolean> {
    if (!this.worker) return false;
    return (await this.request('cancel', {})).cancelled;
  }

  /** Forgets the statistics and, given the workspace, its index and segments. */
  clearCache(params: ParamsOf<'clearCache'> = {}): Promise<ResultOf<'clearCache'>> {
    return this.request('clearCache', params);
  }

  async getStats(): Promise<StatsReply> {
    return this.request('getStats', {});
  }

  /** Stops the worker; the next request starts a new one (and reloads the last model). */
  async terminate(): Promise<void> {
    const worker = this.worker;
    if (worker) await worker.terminate();
  }

  /**
   * Stops the worker for good. A running generation is cancelled first and given a moment to
   * end: terminating a worker while onnxruntime is inside a run can abort the whole process.
   */
  dispose(): Promise<void> {
    this.disposing ??= this.stop().finally(() => {
      this.disposing = undefined;
    });
    return this.disposing;
  }

  private async stop(): Promise<void> {
    this.lastModel = undefined;
    // Background indexing runs onnxruntime too: stop it between chunks first.
    if (this.worker) await Promise.race([this.send('stopIndexing', {}).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 3000))]);
    if (this.worker && this.pending.size > 0) {
      const settled = Promise.allSettled([...this.pending.values()].map((p) => new Promise<void>((resolve) => {
        const { resolve: done, reject } = p;
        p.resolve = (result) => { done(result); resolve(); };
        p.reject = (error) => { reject(error); resolve(); };
      })));
      await this.send('cancel', {}).catch(() => undefined);
      await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, 3000))]);
    }
    await this.terminate();
  }

  private async request<K extends WorkerRequestName>(name: K, params: ParamsOf<K>, onEvent?: (event: EngineEvent) => void): Promise<ResultOf<K>> {
    if (!this.worker) {
      this.worker = this.spawn();
      // A replaced worker has lost its model: load it again before anything else.
      if (this.lastModel && name !== 'loadModel' && name !== 'cancel') await this.send('loadModel', this.lastModel);
    }
    return this.send(name, params, onEvent);
  }

  private send<K extends WorkerRequestName>(name: K, params: ParamsOf<K>, onEvent?: (event: EngineEvent) => void): Promise<ResultOf<K>> {
    const worker = this.worker!;
    const id = this.nextId++;
    return new Promise<ResultOf<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (result: unknown) => void, reject, onEvent });
      worker.postMessage({ type: 'request', id, name, params } as WorkerRequestMessage);
    });
  }

  private spawn(): Worker {
    const worker = new Worker(this.workerPath);
    worker.on('message', (message: WorkerToHostMessage) => {
      if (message.type === 'index') {
        for (const listener of this.indexListeners) listener(message.status);
        return;
      }
      const pending = this.pending.get(message.id);
      if (!pending) return;
      if (message.type === 'event') {
        pending.onEvent?.(message.event);
        return;
      }
      this.pending.delete(message.id);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new EngineRequestError(message.error));
    });
    const lost = (reason: string): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (this.lastModel) this.restarts++;
      const failed = [...this.pending.values()];
      this.pending.clear();
      for (const pending of failed) {
        pending.reject(new EngineRequestError({ name: 'WorkerCrashedError', message: `The engine worker stopped (${reason}); the next request starts it again.` }));
      }
    };
    worker.on('error', (error) => lost(error.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    // The extension host must be able to exit while the worker idles.
    worker.unref();
    return worker;
  }
}
