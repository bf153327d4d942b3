import { extractDefinitions } from '../src/engine/segments/definitions';
import * as fs from 'node:fs';
for (const f of process.argv.slice(2)) console.log(f, JSON.stringify(extractDefinitions(f, fs.readFileSync(f, 'utf8'))));
