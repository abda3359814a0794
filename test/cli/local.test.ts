/** The local command's contract (shared/DESIGN.md): flags, variables, exit codes and the --json summary. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/local';
import { httpTransport } from '../../lambdas/shared/http-transport';
import { startEmulator, type Emulator } from '../../local/emulator';
import { nodeArgsOf } from '../../bin/npm-scripts';
import { runProcess, startProcess, stderrMatch } from '../helpers/child-process';

const dir = mkdtempSync(join(tmpdir(), 'webrun-cli-'));
const file = (name: string, body: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  return path;
};
const good = file('good.json', { session: { startingPoint: 'https://example.com' }, tasks: [{ taskDetails: 'Open the first link' }, { taskDetails: 'Read the page title' }] });
const empty = file('empty.json', { tasks: [] });

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main({ argv, env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), readStdin: async () => '' });
  return { code, stdout, stderr };
}

let external: Emulator;
beforeAll(async () => {
  external = await startEmulator({ apiKey: 'ext-key-123456' });
});
afterAll(() => external.close());
beforeEach(() => external.reset());

describe('npm start (local command)', () => {
  it('succeeds against the built-in emulator with exactly one JSON summary on stdout', async () => {
    const { code, stdout, stderr } = await cli([good, '--json', '--wait-scale', '0']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]);
    expect(summary).toMatchObject({ status: 'SUCCEEDED', sessionId: expect.any(String), stats: { stateTransitions: expect.any(Number), lambdaInvocations: expect.any(Number), wallMs: expect.any(Number) } });
    expect(summary.output.tasks).toHaveLength(2);
    expect(summary.output.sessionId).toBe(summary.sessionId);
    expect(stderr).toContain('built-in emulator');
    expect(stderr).toMatch(/task 2\/2 completed/);
    expect(stderr).toMatch(/session \S+ terminated/);
  });

  it('exits 2 with InvalidInput naming the field for an empty task list', async () => {
    const { code, stdout, stderr } = await cli([empty, '--json', '--wait-scale', '0']);
    expect(code).toBe(2);
    const summary = JSON.parse(stdout);
    expect(summary.status).toBe('FAILED');
    expect(summary.error.name).toBe('Webrun.InvalidInput');
    expect(summary.error.cause).toContain('tasks: must contain at least one task');
    expect(summary.sessionId).toBeUndefined();
    expect(stderr).toContain('tasks: must contain at least one task');
  });

  it('exits 1 when the workflow fails, printing the error name and cause plainly', async () => {
    external.enqueueTasks({ outcome: 'failed', reason: 'Navigation failed: page did not load' });
    const { code, stdout, stderr } = await cli([good, '--json', '--wait-scale', '0', '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456' });
    expect(code).toBe(1);
    expect(JSON.parse(stdout).error.name).toBe('Webrun.TaskFailed');
    expect(stderr).toContain('failed: Webrun.TaskFailed');
    expect(stderr).toContain('Navigation failed');
    expect(stdout + stderr).not.toContain('ext-key-123456');
    expect(external.ledger().open).toBe(0);
  });

  it('prefers --base-url over WEBRUN_BASE_URL, and uses WEBRUN_BASE_URL when no flag is given', async () => {
    const viaEnv = await cli([good, '--json', '--wait-scale', '0'], { WEBRUN_BASE_URL: external.url, WEBRUN_API_KEY: 'ext-key-123456' });
    expect(viaEnv.code).toBe(0);
    expect(external.ledger().created).toBe(1);
    const viaFlag = await cli([good, '--json', '--wait-scale', '0', '--base-url', external.url], { WEBRUN_BASE_URL: 'http://127.0.0.1:9', WEBRUN_API_KEY: 'ext-key-123456' });
    expect(viaFlag.code).toBe(0);
    expect(external.ledger().created).toBe(2);
  });

  it.each([
    [['--json'], 'missing <input.json>'],
    [[good, '--wait-scale=-1'], '--wait-scale must be a number from 0 to 10'],
    [[good, '--wait-scale', 'abc'], '--wait-scale must be a number from 0 to 10'],
    // A timer this long overflows and fires at once: no wait at all.
    [[good, '--wait-scale', '1e9'], '--wait-scale must be a number from 0 to 10, got "1e9"'],
    [[good, '--bogus'], "Unknown option '--bogus'"],
    [[join(dir, 'missing.json')], 'cannot read'],
    [[file('broken.json', '{"tasks": [')], 'is not valid JSON'],
    // Latin-1 "café": read as UTF-8 it would reach the agent as "caf�".
    [[file('latin1.json', Buffer.concat([Buffer.from('{"tasks":[{"taskDetails":"caf'), Buffer.from([0xe9]), Buffer.from('"}]}')]))], 'latin1.json is not UTF-8 text: save it as UTF-8'],
    [['-', '--emulator-tasks', '-'], 'the input and --emulator-tasks cannot both read stdin'],
    [[good, '--base-url', 'not a url'], '--base-url is not a URL'],
    [[good, '--base-url', 'https://api.example.com'], 'WEBRUN_API_KEY is not set'],
  ])('exits 2 for bad usage %j', async (argv, message) => {
    const { code, stderr } = await cli(argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  // Scaled down, the poll pauses and the waits after a 429's Retry-After would hit an API off this machine faster than
  // it allows (every 2 to 3 s); the README's demo scale with WEBRUN_API_KEY set must not open a billed session so.
  describe('--wait-scale under 1 is for an API on loopback', () => {
    const requested: string[] = [];
    const send = httpTransport.send;
    beforeEach(() => {
      requested.length = 0;
      // Any request off this machine is recorded and refused: no test reaches the network.
      vi.spyOn(httpTransport, 'send').mockImplementation(async (call) => {
        if (call.url.startsWith(external.url)) return send(call);
        requested.push(call.url);
        throw new Error('no network in tests');
      });
    });
    afterAll(() => {
      vi.restoreAllMocks();
    });

    it.each<[string, string[]]>([
      ['the real API (WEBRUN_API_KEY set)', ['--wait-scale', '0.1']],
      ['an https base URL', ['--wait-scale', '0', '--base-url', 'https://api.example.com']],
      ['a batch against the real API', ['--wait-scale', '0.5', '--batch', 'items.json', '--template', 't.json']],
    ])('refused against %s, before any request (exit 2)', async (_, flags) => {
      const items = file('items.json', '[{"q":"kettle"}]');
      const template = file('t.json', '{"tasks":[{"taskDetails":"Search for {{q}}"}]}');
      const argv = flags.includes('--batch') ? flags.map((f) => (f === 'items.json' ? items : f === 't.json' ? template : f)) : [good, ...flags];
      const { code, stderr } = await cli(argv, { WEBRUN_API_KEY: 'real-key-123456' });
      expect(code).toBe(2);
      expect(stderr).toMatch(/--wait-scale 0(\.\d)? is for an API on loopback \(the built-in emulator\): https:\/\/[^ ]+ asks to be polled every 2 to 3 s/);
      expect(requested).toEqual([]);
    });

    it('kept for an API on loopback; 1 or more is kept for any API', async () => {
      expect((await cli([good, '--json', '--wait-scale', '0.01', '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456' })).code).toBe(0);
      const slower = await cli([good, '--wait-scale', '2', '--base-url', 'https://api.example.com'], { WEBRUN_API_KEY: 'real-key-123456' });
      expect(slower.stderr).not.toContain('is for an API on loopback');
      expect(requested[0]).toBe('https://api.example.com/start/start-session');
    });
  });

  it.each<[string, () => string, string]>([
    ['a file', () => file('not-a-folder', 'x'), 'ENOTDIR'],
    // existsSync follows the link and finds nothing; mkdir then said only EEXIST.
    ['a symbolic link to nothing', () => {
      const link = join(dir, 'dangling-results');
      if (!existsSync(link)) symlinkSync(join(dir, 'nowhere'), link);
      return link;
    }, `it is a symbolic link to ${join(dir, 'nowhere')}, which does not exist`],
    // Node 20's recursive mkdir never returns for a path under /proc: the check must not hang there.
    ...(existsSync('/proc/self') ? [['a folder that cannot be made', () => '/proc/webrun-sfn-results', 'ENOENT'] as [string, () => string, string]] : []),
  ])('exits 2 before any session when --results-dir is %s (a stored result would be lost mid-run)', async (_label, dirOf, code) => {
    const resultsDir = dirOf();
    const { code: exit, stdout, stderr } = await cli([good, '--json', '--wait-scale', '0', '--base-url', external.url, '--results-dir', resultsDir], { WEBRUN_API_KEY: 'ext-key-123456' });
    expect(exit).toBe(2);
    expect(stderr).toContain(`--results-dir ${resultsDir} cannot hold results: ${code}`);
    expect(JSON.parse(stdout).error.name).toBe('Webrun.InvalidInput');
    expect(external.ledger().requests).toHaveLength(0);
  });

  it('makes a --results-dir that does not exist yet, parents included', async () => {
    const nested = join(dir, 'made', 'by', 'the-run');
    const { code } = await cli([good, '--json', '--wait-scale', '0', '--base-url', external.url, '--results-dir', nested], { WEBRUN_API_KEY: 'ext-key-123456' });
    expect(code).toBe(0);
    expect(statSync(nested).isDirectory()).toBe(true);
    expect(readdirSync(nested)).toEqual([]);
  });

  describe('WEBRUN_SITE_SECRETS_FILE (site credentials, the local stand-in for Secrets Manager)', () => {
    const PASSWORD = 'pw-CLI-77f3b1e9';
    const login = file('login.json', { tasks: [{ taskDetails: 'Log in', secrets: [{ match: '*.example.com', secret: 'webrun-sfn/example' }] }] });

    it('resolves a task\'s references from the file and prints none of the values', async () => {
      const secrets = file('secrets.json', { 'webrun-sfn/example': { username: 'ada', password: PASSWORD } });
      const { code, stdout, stderr } = await cli([login, '--json', '--wait-scale', '0', '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456', WEBRUN_SITE_SECRETS_FILE: secrets });
      expect(code).toBe(0);
      expect(external.ledger({ reveal: true }).sessions[0].tasks[0].body).toMatchObject({ secrets: [{ match: '*.example.com', fields: { username: 'ada', password: PASSWORD } }] });
      expect(stdout + stderr).not.toContain(PASSWORD);
    });

    it('reads a file a Windows editor saved with a byte-order mark, as it reads the input', async () => {
      const secrets = file('bom-secrets.json', `\uFEFF${JSON.stringify({ 'webrun-sfn/example': { username: 'ada', password: PASSWORD } })}`);
      const { code, stdout, stderr } = await cli([login, '--json', '--wait-scale', '0', '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456', WEBRUN_SITE_SECRETS_FILE: secrets });
      expect(code, stderr).toBe(0);
      expect(stdout + stderr).not.toContain(PASSWORD);
    });

    it('exits 1 with ConfigError naming the secret when the file lacks it, and terminates the session', async () => {
      const secrets = file('other-secrets.json', { 'webrun-sfn/other': { password: PASSWORD } });
      const { code, stdout } = await cli([login, '--json', '--wait-scale', '0', '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456', WEBRUN_SITE_SECRETS_FILE: secrets });
      expect(code).toBe(1);
      expect(JSON.parse(stdout).error).toMatchObject({ name: 'Webrun.ConfigError', cause: expect.stringContaining('webrun-sfn/example is not in') });
      expect(stdout).not.toContain(PASSWORD);
      expect(external.ledger()).toMatchObject({ created: 1, open: 0 });
    });

    it('exits 2 before any session when a task names a login and WEBRUN_SITE_SECRETS_FILE is not set: its send would fail', async () => {
      const twoTasks = file('login-second.json', { tasks: [{ taskDetails: 'Open the shop' }, { taskDetails: 'Log in', secrets: [{ match: '*.example.com', secret: 'webrun-sfn/example' }] }] });
      const { code, stdout, stderr } = await cli([twoTasks, '--json', '--wait-scale', '0', '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456' });
      expect(code).toBe(2);
      expect(JSON.parse(stdout).error).toEqual({ name: 'Webrun.InvalidInput', cause: expect.stringContaining('tasks[1].secrets[0] names the site credentials secret webrun-sfn/example, but WEBRUN_SITE_SECRETS_FILE is not set') });
      expect(stderr).toContain('nothing was started');
      expect(external.ledger().requests).toHaveLength(0);
    });

    it.each([
      ['unreadable', join(dir, 'no-such-secrets.json'), 'cannot read'],
      ['not JSON', file('bad-secrets.json', `{"webrun-sfn/example": {"password": "${PASSWORD}"`), 'must hold a JSON object'],
      ['an array', file('array-secrets.json', [PASSWORD]), 'must hold a JSON object'],
    ])('exits 2 before any session when the file is %s, without quoting it', async (_label, path, message) => {
      const { code, stdout, stderr } = await cli([login, '--json', '--wait-scale', '0', '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456', WEBRUN_SITE_SECRETS_FILE: path });
      expect(code).toBe(2);
      expect(stderr).toContain(`WEBRUN_SITE_SECRETS_FILE: `);
      expect(stderr).toContain(message);
      expect(stdout + stderr).not.toContain(PASSWORD);
      expect(external.ledger().requests).toHaveLength(0);
    });
  });

  describe('relative paths: from the folder the command was typed in (INIT_CWD, set by npm), not npm\'s package folder', () => {
    /** What npm sets when `npm start` launches the command: the script it runs, which names the entry point. */
    const BY_NPM_START = { npm_lifecycle_script: 'node --require tsx/cjs bin/local.ts' };
    // What `npm start` gets when typed in `typedIn`: INIT_CWD names it, the process runs elsewhere (here: the tests').
    const typedIn = join(dir, 'typed-in');
    mkdirSync(typedIn);
    const here = (name: string, body: unknown) => writeFileSync(join(typedIn, name), typeof body === 'string' ? body : JSON.stringify(body));
    here('login.json', { tasks: [{ taskDetails: 'Log in', secrets: [{ match: '*.example.com', secret: 'webrun-sfn/example' }] }] });
    here('secrets.json', { 'webrun-sfn/example': { username: 'ada', password: 'pw-rel-1' } });
    here('script.json', [{ outcome: 'completed', inline: true, data: { readFrom: 'the folder typed in' } }]);
    here('a-file', 'x');

    it('reads the input, --emulator-tasks and WEBRUN_SITE_SECRETS_FILE there, and makes --results-dir there', async () => {
      const { code, stdout, stderr } = await cli(['login.json', '--emulator-tasks', 'script.json', '--results-dir', 'results', '--json', '--wait-scale', '0'], { ...BY_NPM_START, INIT_CWD: typedIn, WEBRUN_SITE_SECRETS_FILE: 'secrets.json' });
      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout).output.tasks[0].result).toEqual({ readFrom: 'the folder typed in' });
      expect(statSync(join(typedIn, 'results')).isDirectory()).toBe(true);
      expect(existsSync(join(process.cwd(), 'results'))).toBe(false);
    });

    it.each<[string, string[], NodeJS.ProcessEnv, string]>([
      ['the input', ['missing.json'], {}, `cannot read missing.json (${join(typedIn, 'missing.json')}): ENOENT`],
      ['--emulator-tasks', ['login.json', '--emulator-tasks', 'no-script.json'], { WEBRUN_SITE_SECRETS_FILE: 'secrets.json' }, `--emulator-tasks: cannot read no-script.json (${join(typedIn, 'no-script.json')}): ENOENT`],
      ['WEBRUN_SITE_SECRETS_FILE', ['login.json'], { WEBRUN_SITE_SECRETS_FILE: 'no-secrets.json' }, `WEBRUN_SITE_SECRETS_FILE: cannot read no-secrets.json (${join(typedIn, 'no-secrets.json')}): ENOENT`],
      ['--results-dir', ['login.json', '--results-dir', 'a-file'], { WEBRUN_SITE_SECRETS_FILE: 'secrets.json' }, `--results-dir a-file (${join(typedIn, 'a-file')}) cannot hold results: ENOTDIR`],
    ])('a refusal of %s names the path as written and where it was looked for', async (_what, argv, env, message) => {
      const { code, stderr } = await cli([...argv, '--wait-scale', '0'], { ...BY_NPM_START, INIT_CWD: typedIn, ...env });
      expect(code).toBe(2);
      expect(stderr).toContain(message);
    });

    it('an INIT_CWD the command merely inherited (not launched by this package\'s npm script) is passed over: run directly, it reads where it runs', async () => {
      // A leftover INIT_CWD naming a folder where login.json exists, as every child of an npm script (npm test) has.
      for (const env of [{}, { npm_lifecycle_script: 'vitest run' }]) {
        const { code, stderr } = await cli(['login.json', '--wait-scale', '0'], { ...env, INIT_CWD: typedIn });
        expect(code).toBe(2);
        expect(stderr).toContain('cannot read login.json');
        expect(stderr).not.toContain(typedIn);
      }
    });

    it.each([['relative', 'typed-in'], ['not a folder', join(dir, 'good.json')], ['missing', join(dir, 'gone')]])('an INIT_CWD that is %s is passed over for the process\'s folder', async (_what, initCwd) => {
      const { code, stderr } = await cli([relative(process.cwd(), good), '--wait-scale', '0'], { ...BY_NPM_START, INIT_CWD: initCwd });
      expect(code, stderr).toBe(0);
    });
  });

  // This and the signal tests below run concurrently: most of their time is child processes starting.
  it.concurrent('runs as `npm start` in a child process with the contract exit code and stdout', async () => {
    const env = { ...process.env, WEBRUN_API_KEY: '', WEBRUN_BASE_URL: '' };
    const npmStart = (args: string[]) => runProcess('npm', ['start', '--silent', '--', ...args], { env });
    // Typed in another folder (npm finds the package with --prefix, as it would upwards from a subfolder), relative
    // paths are that folder's: npm runs the script in the package folder and names the other one in INIT_CWD.
    const elsewhere = mkdtempSync(join(tmpdir(), 'webrun-cli-typed-here-'));
    writeFileSync(join(elsewhere, 'in.json'), JSON.stringify({ tasks: [{ taskDetails: 'Read the page title' }] }));
    const root = join(__dirname, '..', '..');
    const fromElsewhere = runProcess('npm', ['--prefix', root, 'start', '--silent', '--', 'in.json', '--json', '--wait-scale', '0', '--results-dir', 'out'], { env, cwd: elsewhere });
    // All at once: each is a process start (npm, then node with tsx), most of this test's time.
    const [ok, bad, there] = await Promise.all([npmStart([good, '--json', '--wait-scale', '0']), npmStart([empty, '--json']), fromElsewhere]);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout.trim()).status).toBe('SUCCEEDED');
    expect(bad.status).toBe(2);
    expect(there.status, there.stderr).toBe(0);
    expect(JSON.parse(there.stdout.trim()).status).toBe('SUCCEEDED');
    expect(statSync(join(elsewhere, 'out')).isDirectory()).toBe(true);
  });

  // Each with an emulator of its own.
  it.concurrent.for(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('on %s terminates the session, prints the --json summary and exits 1', async (signal, { onTestFinished }) => {
    const api = await startEmulator({ apiKey: 'ext-key-123456' });
    onTestFinished(() => api.close());
    api.enqueueTasks({ outcome: 'completed', inline: true, data: { message: 'kept' } }, { outcome: 'stuck' });
    const p = startProcess(process.execPath, [...nodeArgsOf('start'), good, '--base-url', api.url, '--json'], {
      env: { ...process.env, WEBRUN_API_KEY: 'ext-key-123456' },
    });
    await stderrMatch(p, /task 2\/2 pending/);
    expect(api.ledger().open).toBe(1);
    p.child.kill(signal);
    expect(await p.done).toBe(1);
    expect(p.stderr()).toContain(`interrupted (${signal})`);
    expect(api.ledger().open).toBe(0);
    expect(api.ledger().sessions[0].terminateCalls).toBe(1);
    const summary = JSON.parse(p.stdout());
    expect(summary).toMatchObject({ status: 'FAILED', error: { name: 'States.Aborted' }, sessionId: api.ledger().sessions[0].sessionId });
    // The first task's result, completed before the signal, is kept in the cause.
    expect(JSON.parse(summary.error.cause)).toMatchObject({ completed: [{ index: 0, result: { message: 'kept' } }], taskIndex: 1, sessionEnded: true });
  });

  it('--emulator-tasks scripts the built-in emulator: the guardrails example needs its rule, and gets it', async () => {
    const root = join(__dirname, '..', '..');
    const { code, stdout, stderr } = await cli([join(root, 'examples/guardrails.json'), '--emulator-tasks', join(root, 'examples/guardrails.emulator.json'), '--json', '--wait-scale', '0']);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary.output.tasks[1].guardrails).toEqual([{ question: 'Please confirm purchase of 1 item for 24.90 EUR?', answeredBy: 'rule' }]);
    expect(summary.output.usage).toEqual({ inputTokens: expect.any(Number), outputTokens: expect.any(Number), cost: expect.any(Number) });
    expect(stderr).toContain('answered by a rule');
  });

  it.each([
    [['[{"outcome":"maybe"}]'], '[0]: outcome must be one of'],
    [['{"outcome":"completed"}'], 'must hold a JSON array of task behaviours'],
    [['not json'], 'is not valid JSON'],
  ])('--emulator-tasks refuses %j with exit 2, naming the file', async ([body], message) => {
    const script = file(`script-${Math.random().toString(36).slice(2)}.json`, body);
    const { code, stderr } = await cli([good, '--emulator-tasks', script, '--wait-scale', '0']);
    expect(code).toBe(2);
    expect(stderr).toContain(`--emulator-tasks: ${script}`.slice(0, 20));
    expect(stderr).toContain(message);
  });

  it('--emulator-tasks is refused when the run does not use the built-in emulator', async () => {
    const script = file('script-ok.json', [{ outcome: 'completed' }]);
    const { code, stderr } = await cli([good, '--emulator-tasks', script, '--base-url', external.url], { WEBRUN_API_KEY: 'ext-key-123456' });
    expect(code).toBe(2);
    expect(stderr).toContain('--emulator-tasks scripts the built-in emulator');
    expect(external.ledger().requests).toHaveLength(0);
  });

  it('accepts an input file that starts with a byte-order mark', async () => {
    const bom = file('bom.json', `\uFEFF${JSON.stringify({ tasks: [{ taskDetails: 'Open the page' }] })}`);
    const { code } = await cli([bom, '--wait-scale', '0']);
    expect(code).toBe(0);
  });

  it('refuses a plain-http base URL off loopback before any request: the key would travel in the clear', async () => {
    const { code, stderr } = await cli([good, '--base-url', 'http://192.0.2.1:8080', '--json'], { WEBRUN_API_KEY: 'ext-key-123456' });
    expect(code).toBe(2);
    expect(stderr).toContain('--base-url must be https unless it is on loopback');
    expect(stderr).not.toContain('ext-key-123456');
  });

  it.each(['http://127.0.0.1.nip.io', 'http://127.attacker.example:8080', 'http://localhost.example.com'])('refuses %s, a name that only looks like loopback, as plain http off loopback', async (url) => {
    const { code, stderr } = await cli([good, '--base-url', url, '--json'], { WEBRUN_API_KEY: 'ext-key-123456' });
    expect(code).toBe(2);
    expect(stderr).toContain('--base-url must be https unless it is on loopback');
    expect(stderr).not.toContain('ext-key-123456');
  });

  it('refuses a base URL that carries a user name or password, without printing the password', async () => {
    const { code, stderr } = await cli([good, '--base-url', 'http://ada:hunter2@127.0.0.1:9', '--json']);
    expect(code).toBe(2);
    expect(stderr).toContain('--base-url must not carry a user name or password');
    expect(stderr).not.toContain('hunter2');
  });

  it.each([['a line break inside', 'sk-abc\ndef'], ['a non-ASCII letter', 'sk-a€b'], ['a space inside', 'sk-abc def']])('refuses an API key with %s before any request, without printing it', async (_what, key) => {
    const { code, stderr } = await cli([good, '--base-url', 'http://127.0.0.1:9', '--json'], { WEBRUN_API_KEY: key });
    expect(code).toBe(2);
    expect(stderr).toContain('WEBRUN_API_KEY holds a character an HTTP header cannot carry');
    expect(stderr).not.toContain(key);
  });

  it('says loudly, before any session, that WEBRUN_API_KEY makes the run use the real, billed API', async () => {
    // The real API (no network here) answers as it does a key it does not know: a final refusal, not retried.
    const refused = vi.spyOn(httpTransport, 'send').mockResolvedValue({
      status: 401, header: () => undefined, text: JSON.stringify({ success: false, error: 'Invalid API key', code: 'INVALID_API_KEY' }),
    });
    let stderr: string;
    try {
      ({ stderr } = await cli([good], { WEBRUN_API_KEY: 'wr-real-key-1' }));
      expect(refused.mock.calls[0][0].url).toBe('https://connect.webrun.ai/start/start-session');
    } finally {
      refused.mockRestore();
    }
    const warning = stderr.indexOf('REAL webrun API');
    expect(warning).toBeGreaterThanOrEqual(0);
    expect(warning).toBeLessThan(stderr.indexOf('running'));
    expect(stderr).not.toContain('wr-real-key-1');
  });

  it('a failure without --json still prints the results it kept, on stdout', async () => {
    external.enqueueTasks({ outcome: 'completed', inline: true, data: { message: 'first page read' } }, { outcome: 'failed' });
    const { code, stdout } = await cli([good, '--base-url', external.url, '--wait-scale', '0'], { WEBRUN_API_KEY: 'ext-key-123456' });
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toMatchObject({ sessionId: expect.any(String), completed: [{ index: 0, result: { message: 'first page read' } }] });
  });
});
