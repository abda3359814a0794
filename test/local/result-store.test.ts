/**
 * The local result store (the folder standing in for the result bucket): results may be private, so its folders
 * and files are for their owner only, and the default folder, whose name anyone can guess, must be the user's own.
 */
import { chownSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultResultsDir, folderResultStore, prepareResultsDir } from '../../local/result-store';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('the local result store', () => {
  it('makes its folders for their owner only, and writes each result for its owner only', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'webrun-store-')), 'results', 'nested');
    prepareResultsDir(root);
    expect(mode(root)).toBe(0o700);
    expect(mode(join(root, '..'))).toBe(0o700);
    const uri = await folderResultStore(root).put('webrun-sfn-local/run-1/task-0.json', '{"secret":"result"}');
    const file = fileURLToPath(uri);
    expect(mode(file)).toBe(0o600);
    expect(mode(join(file, '..'))).toBe(0o700);
  });

  it('has a default folder of the user\'s own in the temporary directory', () => {
    expect(defaultResultsDir()).toBe(join(tmpdir(), `webrun-sfn-results-${process.getuid!()}`));
  });

  // Only root can give a folder to another user.
  it.runIf(process.getuid?.() === 0)('refuses, for the default, a folder another user made first (to read what lands in it)', () => {
    const theirs = mkdtempSync(join(tmpdir(), 'webrun-store-theirs-'));
    chownSync(theirs, 12_345, 12_345);
    expect(() => prepareResultsDir(theirs, { ownedOnly: true })).toThrow('it belongs to another user');
    // A folder the user names (--results-dir) is theirs to choose.
    expect(prepareResultsDir(theirs)).toBe(theirs);
  });
});
