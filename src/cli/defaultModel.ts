import * as fs from 'node:fs';
import * as path from 'node:path';

/** The embedded model, models/stories260K, found from the bundle (dist/) or the sources (src/cli/). */
export function embeddedModelDir(): string {
  const candidates = [path.join(__dirname, '..', 'models', 'stories260K'), path.join(__dirname, '..', '..', 'models', 'stories260K')];
  return candidates.find((c) => fs.existsSync(path.join(c, 'config.json'))) ?? candidates[0]!;
}
