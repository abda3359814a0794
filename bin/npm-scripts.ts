/**
 * package.json's scripts that run `node <flags> <entry>` (start, emulator): the node arguments, so that the bench and
 * the tests run exactly what `npm start` runs, without npm's own start-up.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');

/** `spawn(process.execPath, [...nodeArgsOf('start'), ...args])` runs `npm start -- ...args`. */
export function nodeArgsOf(script: 'start' | 'emulator'): string[] {
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const [command, ...args] = scripts[script].split(' ');
  if (command !== 'node') throw new Error(`npm run ${script} is not a node command: ${scripts[script]}`);
  return args;
}
