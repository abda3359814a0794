/** `npm start -- --batch <items> --template <t.json>`: flags, refusals by line, progress, the --json summary, exit codes, signals. */
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/local';
import { startEmulator, type Emulator } from '../../local/emulator';
import { nodeArgsOf } from '../../bin/npm-scripts';
import { startProcess } from '../helpers/child-process';

const KEY = 'batch-cli-key-5d1e77';
const dir = mkdtempSync(join(tmpdir(), 'webrun-batch-cli-'));
const file = (name: string, body: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  return path;
};
const template = file('template.json', { session: { startingPoint: 'https://shop.example.com/p/{{sku}}' }, tasks: [{ taskDetails: 'Read the price of {{sku}}' }] });
const csv = (n: number, name = `items-${n}.csv`) => file(name, `sku\n${Array.from({ length: n }, (_, i) => `SKU-${i}`).join('\n')}\n`);

async function cli(argv: string[], options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; progress?: { isTTY: boolean; columns: number; write: (t: string) => boolean } } = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main({
    argv,
    env: options.env ?? { WEBRUN_API_KEY: KEY },
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: async () => '',
    signal: options.signal,
    ...(options.progress ? { progressStream: options.progress } : {}),
  } as Parameters<typeof main>[0]);
  return { code, stdout, stderr };
}

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ apiKey: KEY, pendingPolls: 0 });
});
afterAll(() => emulator.close());
beforeEach(() => emulator.reset());

const base = () => ['--base-url', emulator.url, '--wait-scale', '0'];

describe('npm start -- --batch', () => {
  it('runs every item and prints exactly the contract\'s --json summary; one line per finished item on a non-terminal stderr, then a count', async () => {
    const { code, stdout, stderr } = await cli(['--batch', csv(50), '--template', template, '--concurrency', '6', '--json', ...base()]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]);
    expect(Object.keys(summary).sort()).toEqual(['items', 'results', 'stats', 'status']);
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.items).toEqual({ total: 50, succeeded: 50, failed: 0 });
    expect(Object.keys(summary.stats).sort()).toEqual(['lambdaInvocations', 'stateTransitions', 'wallMs']);
    expect(summary.results).toHaveLength(50);
    expect(summary.results[3]).toMatchObject({ item: { sku: 'SKU-3' }, status: 'SUCCEEDED', output: { tasks: [{ status: 'completed' }] } });
    expect(stderr.match(/^ {2}✔ .*succeeded$/gm)).toHaveLength(50);
    expect(stderr).toMatch(/line 5 \{"sku":"SKU-3"\} succeeded/);
    expect(stderr).toMatch(/✔ batch succeeded: 50\/50 items done: 50 succeeded, 0 failed/);
    expect(emulator.ledger()).toMatchObject({ created: 50, terminated: 50, open: 0 });
    expect(emulator.ledger().maxOpen).toBeLessThanOrEqual(6);
  });

  it('without --json prints one JSON line per item on stdout, in the items\' order', async () => {
    const items = file('items.jsonl', '{"sku":"A"}\n{"sku":"B"}\n');
    const { code, stdout } = await cli(['--batch', items, '--template', template, ...base()]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.item.sku, l.status])).toEqual([['A', 'SUCCEEDED'], ['B', 'SUCCEEDED']]);
  });

  it('draws a live bar on a terminal instead of item lines (done, failed, running, rate, time left)', async () => {
    let drawn = '';
    const progress = { isTTY: true, columns: 120, write: (t: string) => ((drawn += t), true) };
    const { code, stderr } = await cli(['--batch', csv(20), '--template', template, ...base()], { progress });
    expect(code).toBe(0);
    expect(drawn).toMatch(/20\/20 done \| 0 failed \| 0 running \| [\d.]+ items\/s \| \S+ left/);
    expect(stderr).not.toMatch(/✔ .*line \d+/);
    expect(stderr).toMatch(/batch succeeded: 20\/20 items done/);
  });

  describe('a batch of 80 in which the emulator fails exactly 3 items\' tasks', () => {
    const failThree = () => emulator.enqueueTasks({ outcome: 'failed' }, { outcome: 'failed' }, { outcome: 'failed' });
    const failedInLedger = () => emulator.ledger().sessions.flatMap((s) => s.tasks.filter((t) => t.status === 'failed').map((t) => /of (SKU-\d+)/.exec(t.taskDetails)?.[1])).sort();

    it('exits 0 with --tolerate 5 and reports exactly those 3', async () => {
      failThree();
      const { code, stdout, stderr } = await cli(['--batch', csv(80), '--template', template, '--concurrency', '8', '--tolerate', '5', '--json', ...base()]);
      expect(code).toBe(0);
      const summary = JSON.parse(stdout);
      expect(summary.status).toBe('SUCCEEDED');
      expect(summary.items).toEqual({ total: 80, succeeded: 77, failed: 3 });
      const failed = summary.results.filter((r: { status: string }) => r.status === 'FAILED');
      expect(failed.map((r: { item: { sku: string } }) => r.item.sku).sort()).toEqual(failedInLedger());
      expect(failed[0].error.name).toBe('Webrun.TaskFailed');
      expect(stderr).toContain('3 failed item(s) are within --tolerate 5%');
    });

    it('exits 1 without --tolerate, the batch failing as the deployed one does', async () => {
      failThree();
      const { code, stdout, stderr } = await cli(['--batch', csv(80), '--template', template, '--concurrency', '8', '--json', ...base()]);
      expect(code).toBe(1);
      const summary = JSON.parse(stdout);
      expect(summary.status).toBe('FAILED');
      expect(summary.items.failed).toBeGreaterThanOrEqual(1);
      expect(stderr).toContain('States.ExceedToleratedFailureThreshold');
      expect(emulator.ledger().open).toBe(0);
    });
  });

  it('--emulator-tasks scripts the built-in emulator for a batch too (here: 2 failed tasks, tolerated)', async () => {
    const tasks = file('tasks.json', [{ outcome: 'failed' }, { outcome: 'failed' }]);
    const { code, stdout } = await cli(['--batch', csv(10), '--template', template, '--emulator-tasks', tasks, '--tolerate', '20', '--json', '--wait-scale', '0'], { env: {} });
    expect(code).toBe(0);
    expect(JSON.parse(stdout).items).toEqual({ total: 10, succeeded: 8, failed: 2 });
  });

  describe('relative paths: from the folder the command was typed in (INIT_CWD, set by npm), not npm\'s package folder', () => {
    const typedIn = join(dir, 'typed-in');
    mkdirSync(typedIn);
    writeFileSync(join(typedIn, 'items.csv'), 'sku\nA\nB\n');
    writeFileSync(join(typedIn, 't.json'), JSON.stringify({ tasks: [{ taskDetails: 'Read the price of {{sku}}' }] }));
    writeFileSync(join(typedIn, 'fail-one.json'), JSON.stringify([{ outcome: 'failed' }]));

    it('reads --batch, --template and --emulator-tasks there, and makes --results-dir there', async () => {
      const { code, stdout, stderr } = await cli(['--batch', 'items.csv', '--template', 't.json', '--emulator-tasks', 'fail-one.json', '--results-dir', 'results', '--tolerate', '50', '--json', '--wait-scale', '0'], { env: { npm_lifecycle_script: 'node --require tsx/cjs bin/local.ts', INIT_CWD: typedIn } });
      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout).items).toEqual({ total: 2, succeeded: 1, failed: 1 });
      expect(statSync(join(typedIn, 'results')).isDirectory()).toBe(true);
      expect(existsSync(join(process.cwd(), 'results'))).toBe(false);
    });

    it.each([
      [['--batch', 'none.csv', '--template', 't.json'], `--batch: cannot read none.csv (${join(typedIn, 'none.csv')}): ENOENT`],
      [['--batch', 'items.csv', '--template', 'none.json'], `--template: cannot read none.json (${join(typedIn, 'none.json')}): ENOENT`],
    ])('a file not found is named as written and where it was looked for: %j', async (argv, message) => {
      const { code, stderr } = await cli([...argv, ...base()], { env: { npm_lifecycle_script: 'node --require tsx/cjs bin/local.ts', INIT_CWD: typedIn, WEBRUN_API_KEY: KEY } });
      expect(code).toBe(2);
      expect(stderr).toContain(message);
    });
  });

  it.each([
    ['a CSV row', 'items.csv', 'sku\nA\nB\n"C\n', 'line 4: has a quoted field that is never closed'],
    ['a JSON item', 'items.json', '[\n  {"sku": "A"},\n  {"sku": "B"},\n  {"sku": ["C"]}\n]\n', 'line 4: vars.sku: must be a string, number or boolean, got an array'],
    ['an unfilled placeholder', 'items.jsonl', '{"sku":"A"}\n{"sku":"B"}\n{"product":"C"}\n', 'line 3: session.startingPoint: has an unknown placeholder {{sku}}'],
  ])('refuses the batch before any session when %s is bad, naming its line (exit 2)', async (_label, name, text, message) => {
    const { code, stdout, stderr } = await cli(['--batch', file(name, text), '--template', template, '--json', ...base()]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${join(dir, name)} ${message}`);
    // The --json summary says why too, as a single run's does.
    expect(JSON.parse(stdout)).toMatchObject({ status: 'FAILED', items: { total: 0 }, results: [], error: { name: 'Webrun.InvalidInput', cause: expect.stringContaining(message) } });
    expect(emulator.ledger().requests).toHaveLength(0);
  });

  it.each([
    [['--template', template], '--template applies to a batch'],
    [['--batch', 'x.csv'], '--batch needs --template'],
    [['--batch', 'x.csv', '--template', template, '--concurrency', '0'], '--concurrency must be a whole number from 1 to 10000'],
    [['--batch', 'x.csv', '--template', template, '--tolerate', '150'], '--tolerate must be a percentage from 0 to 100'],
    [['input.json', '--batch', 'x.csv', '--template', template], 'a batch takes its items from --batch'],
    [['--batch', join(dir, 'none.csv'), '--template', template], '--batch: cannot read'],
    [['--batch', file('latin1.csv', Buffer.from([...Buffer.from('sku\ncaf'), 0xe9, 0x0a])), '--template', template], '--batch: ' + join(dir, 'latin1.csv') + ' is not UTF-8 text'],
    [['--batch', csv(1), '--template', file('t-array.json', [])], 'must hold a workflow input object'],
    // A template the deployed batch state machine could not hold (States.DataLimitExceeded there) fails here too.
    [['--batch', csv(1), '--template', file('t-large.json', { tasks: Array.from({ length: 8 }, () => ({ taskDetails: 'x'.repeat(19_000) })) })],
      'a batch template may have at most 129024'],
    [['--batch', csv(1), '--template', template, '--results-dir', file('results-file', 'x')], 'results-file cannot hold results: ENOTDIR'],
    // Site logins come from WEBRUN_SITE_SECRETS_FILE locally: without it every item would fail at its first send.
    [['--batch', csv(1), '--template', file('t-login.json', { tasks: [{ taskDetails: 'Log in', secrets: [{ match: '*.example.com', secret: 'webrun-sfn/shop' }] }] })],
      'tasks[0].secrets[0] names the site credentials secret webrun-sfn/shop, but WEBRUN_SITE_SECRETS_FILE is not set'],
  ])('exits 2 for bad usage %j', async (argv, message) => {
    const { code, stderr } = await cli([...argv, ...base()]);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(emulator.ledger().requests).toHaveLength(0);
  });

  it('a stop (Ctrl-C) stops every running item, ends their sessions and still prints the summary (exit 1)', async () => {
    emulator.enqueueTasks(...Array.from({ length: 12 }, () => ({ outcome: 'stuck' as const })));
    const controller = new AbortController();
    const poll = setInterval(() => {
      if (emulator.ledger().open === 4) controller.abort();
    }, 20);
    const { code, stdout } = await cli(['--batch', csv(12), '--template', template, '--concurrency', '4', '--json', '--base-url', emulator.url, '--wait-scale', '0.001'], { signal: controller.signal });
    clearInterval(poll);
    expect(code).toBe(1);
    const summary = JSON.parse(stdout);
    expect(summary.status).toBe('ABORTED');
    expect(summary.results.filter((r: { status: string }) => r.status === 'ABORTED')).toHaveLength(4);
    expect(summary.results.filter((r: { status: string }) => r.status === 'PENDING')).toHaveLength(8);
    expect(emulator.ledger()).toMatchObject({ created: 4, terminated: 4, open: 0 });
  });

  it('on SIGTERM as a process: every running item\'s session ended, the summary printed, exit 1', async () => {
    emulator.enqueueTasks(...Array.from({ length: 6 }, () => ({ outcome: 'stuck' as const })));
    const p = startProcess(process.execPath, [...nodeArgsOf('start'), '--batch', csv(6, 'sig.csv'), '--template', template, '--concurrency', '3', '--json', '--base-url', emulator.url], {
      env: { ...process.env, WEBRUN_API_KEY: KEY },
    });
    const deadline = Date.now() + 30_000;
    while (emulator.ledger().sessions.filter((s) => s.tasks.length > 0).length < 3) {
      if (Date.now() > deadline) throw new Error(`the items never started: ${p.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    p.child.kill('SIGTERM');
    expect(await p.done).toBe(1);
    expect(p.stderr()).toContain('interrupted (SIGTERM)');
    expect(emulator.ledger()).toMatchObject({ created: 3, terminated: 3, open: 0 });
    expect(JSON.parse(p.stdout())).toMatchObject({ status: 'ABORTED', items: { total: 6, succeeded: 0, failed: 0 } });
  });
});
