/** Generated files committed to the repo (schema/*.json, local/built/*.json), and the check that they are current. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The names among `files` (name → generated text) whose committed copy in `dir` differs or is missing. */
export function staleFiles(files: Record<string, string>, dir: string): string[] {
  return Object.entries(files)
    .filter(([name, text]) => {
      try {
        return readFileSync(path.join(dir, name), 'utf8') !== text;
      } catch {
        return true;
      }
    })
    .map(([name]) => name);
}
