// The FreqKV status bar item and the `freqkv.running` context key (which shows Cancel only
// while something runs). Its state comes from the commands: loading the model, ready with the
// cache's memory and ratio, answering, indexing n/m, or an error with a click to restart.

import * as vscode from 'vscode';
import type { GenerationStats } from '../engine/generate/stats';
import { statusBarText, statusBarTooltip, statusIsRunning, type EngineStatus } from './statusText';

export class FreqKvStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private status: EngineStatus = { kind: 'idle' };
  private lastStats: GenerationStats | null = null;
  private modelDir: string | null = null;
  private running = false;

  constructor() {
    this.item = vscode.window.createStatusBarItem('freqkv.cache', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'FreqKV cache';
    this.render();
    this.item.show();
  }

  get state(): EngineStatus {
    return this.status;
  }

  loading(modelDir: string): void {
    this.set({ kind: 'loading', modelDir });
  }

  /** A model is loaded; `stats` of the last generation, or undefined to keep the ones shown. */
  ready(modelDir: string | null, stats?: GenerationStats | null): void {
    this.modelDir = modelDir;
    if (stats !== undefined) this.lastStats = stats;
    this.set({ kind: 'ready', stats: this.lastStats });
  }

  answering(stats: GenerationStats | null): void {
    if (stats) this.lastStats = stats;
    this.set({ kind: 'answering', stats: this.lastStats });
  }

  /** Files read into the segment cache so far (the index work calls this as it goes). */
  indexing(done: number, total: number): void {
    this.set({ kind: 'indexing', done, total });
  }

  error(message: string): void {
    this.set({ kind: 'error', message });
  }

  dispose(): void {
    this.item.dispose();
  }

  private set(status: EngineStatus): void {
    this.status = status;
    this.render();
  }

  private render(): void {
    const status = this.status;
    this.item.text = statusBarText(status);
    this.item.tooltip = statusBarTooltip(this.lastStats, this.modelDir, status);
    this.item.command = statusIsRunning(status) ? 'freqkv.cancel' : status.kind === 'error' ? 'freqkv.restartEngine' : 'freqkv.showStats';
    this.item.backgroundColor = status.kind === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    const running = statusIsRunning(status);
    if (running !== this.running) {
      this.running = running;
      void vscode.commands.executeCommand('setContext', 'freqkv.running', running);
    }
  }
}
