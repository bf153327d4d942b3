// The identity of a model for stored segments: a hash of its config.json and tokenizer files'
// bytes and of the graph and weight files' names, sizes and modification times. Any change of
// model (other weights, another export, a re-downloaded file) changes it, so old segments are
// never used with it. Weights are not hashed whole: for a 2 GB model that would cost seconds
// on every run.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelFolder } from '../model/modelFolder';

export function modelIdentity(folder: ModelFolder): string {
  const hash = createHash('sha256');
  for (const name of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
    const file = path.join(folder.dir, name);
    hash.update(`${name}:`);
    if (fs.existsSync(file)) hash.update(fs.readFileSync(file));
    hash.update('\n');
  }
  for (const file of [folder.onnxPath, ...folder.externalDataFiles]) {
    const st = fs.statSync(file);
    hash.update(`${path.basename(file)}:${st.size}:${st.mtimeMs}\n`);
  }
  return hash.digest('hex').slice(0, 32);
}
