/**
 * The local result store (the folder standing in for the result bucket): results may be private, so its folders
 * and files are for their owner only, and the default folder, whose name anyone can guess, must be the user's own.
 */
import { chownSync, existsSync, mkdirSync, mkdtempSync, statSync, symlinkSync } from 'node:fs';
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

  it('names a symbolic link to nothing as such (mkdir would only say EEXIST), for the folder or one on its way, and makes nothing', () => {
    const at = mkdtempSync(join(tmpdir(), 'webrun-store-links-'));
    symlinkSync(join(at, 'nowhere'), join(at, 'dangling'));
    expect(() => prepareResultsDir(join(at, 'dangling'))).toThrow(`it is a symbolic link to ${join(at, 'nowhere')}, which does not exist`);
    expect(() => prepareResultsDir(join(at, 'dangling', 'sub'))).toThrow(`${join(at, 'dangling')} is a symbolic link to ${join(at, 'nowhere')}, which does not exist`);
    // A relative link names its target from the link's folder.
    symlinkSync('gone', join(at, 'relative'));
    expect(() => prepareResultsDir(join(at, 'relative'))).toThrow(`it is a symbolic link to ${join(at, 'gone')}, which does not exist`);
    symlinkSync(join(at, 'loop-b'), join(at, 'loop-a'));
    symlinkSync(join(at, 'loop-a'), join(at, 'loop-b'));
    expect(() => prepareResultsDir(join(at, 'loop-a'))).toThrow(`it is a symbolic link to ${join(at, 'loop-b')}, which leads back to itself`);
    expect(existsSync(join(at, 'nowhere'))).toBe(false);
    // A link to a folder is a folder.
    mkdirSync(join(at, 'real'));
    symlinkSync(join(at, 'real'), join(at, 'to-real'));
    expect(prepareResultsDir(join(at, 'to-real', 'made'))).toBe(join(at, 'to-real', 'made'));
    expect(statSync(join(at, 'real', 'made')).isDirectory()).toBe(true);
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
