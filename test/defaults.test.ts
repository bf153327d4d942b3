// The defaults are defined once (src/engine/index/defaults.ts); package.json's settings must
// state the same ones, since VS Code shows those to the user.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WORKSPACE_DEFAULTS } from '../src/engine/index/defaults';

const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, { default: unknown }> } };
};

const SETTING_OF: Record<string, keyof typeof WORKSPACE_DEFAULTS> = {
  'freqkv.maxNewTokens': 'maxNewTokens',
  'freqkv.temperature': 'temperature',
  'freqkv.include': 'include',
  'freqkv.exclude': 'exclude',
  'freqkv.maxFileBytes': 'maxFileBytes',
  'freqkv.maxWorkspaceTokens': 'maxWorkspaceTokens',
  'freqkv.mode': 'mode',
  'freqkv.segments.codec': 'codec',
  'freqkv.segments.maxStoreMB': 'maxStoreMB',
  'freqkv.cache.method': 'cacheMethod',
  'freqkv.cache.sinks': 'sinks',
  'freqkv.cache.retain': 'retain',
  'freqkv.cache.capacity': 'capacity',
  'freqkv.threads': 'threads',
  'freqkv.firstAnswerSeconds': 'firstAnswerSeconds',
};

describe('defaults', () => {
  it("package.json's settings have the defaults module's values", () => {
    const properties = manifest.contributes.configuration.properties;
    for (const [setting, key] of Object.entries(SETTING_OF)) {
      expect(properties[setting], setting).toBeDefined();
      expect(properties[setting]!.default, setting).toEqual(WORKSPACE_DEFAULTS[key]);
    }
  });
});
