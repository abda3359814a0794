import { App, Stack } from 'aws-cdk-lib/core';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import { toEventPattern } from '../../lib/triggers';
import { stackPropsFromConfig, WebrunStack } from '../../lib/webrun-stack';
import { Completion } from '../../lib/webrun-workflow';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigFileError, DEFAULT_STACK_NAME, LAMBDA_LOG_LEVELS, loadConfig, parseConfig, scheduleExpressionProblem } from '../../lib/config';
import { LambdaLogLevel } from '../../lib/lambda-log-level';

const root = path.join(__dirname, '..', '..');
const task = { tasks: [{ taskDetails: 'Open the page' }] };
const schedule = (extra: Record<string, unknown> = {}) => ({ name: 'daily', expression: 'rate(1 day)', input: task, ...extra });
const trigger = (extra: Record<string, unknown> = {}) => ({ name: 'app', eventPattern: { source: ['com.example'] }, ...extra });

/** The message parseConfig throws for `raw`. */
function problem(raw: unknown, baseDir = root): string {
  try {
    parseConfig(raw, 'webrun.config.json', baseDir);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigFileError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('config defaults and samples', () => {
  it('an empty config gets the documented defaults', () => {
    expect(parseConfig({})).toEqual({
      stackName: DEFAULT_STACK_NAME,
      apiKeySecretName: undefined,
      baseUrl: undefined,
      alarmEmail: undefined,
      questionEmail: undefined,
      costAlarmUsd: undefined,
      logLevel: 'ERROR',
      includeExecutionData: false,
      lambdaLogLevel: 'INFO',
      logRetentionDays: 30,
      completion: 'poll',
      inlineResultBytes: 8192,
      resultRetentionDays: 30,
      batch: { enabled: false, maxConcurrency: 5, toleratedFailurePercentage: 0 },
      schedules: [],
      triggers: [],
    });
  });

  it('completion, inlineResultBytes and resultRetentionDays reach the construct', () => {
    const config = parseConfig({ completion: 'webhook', inlineResultBytes: 1024, resultRetentionDays: 7 });
    expect(stackPropsFromConfig(config).workflow).toMatchObject({ completion: Completion.WEBHOOK, inlineResultBytes: 1024, resultRetentionDays: 7 });
    expect(stackPropsFromConfig(parseConfig({})).workflow).toMatchObject({ completion: Completion.POLL });
  });

  it('lambdaLogLevel reaches the construct as its LambdaLogLevel enum, for every level the config accepts', () => {
    expect(LAMBDA_LOG_LEVELS.map((name) => stackPropsFromConfig(parseConfig({ lambdaLogLevel: name })).workflow?.lambdaLogLevel))
      .toEqual([LambdaLogLevel.DEBUG, LambdaLogLevel.INFO, LambdaLogLevel.WARN, LambdaLogLevel.ERROR]);
    expect(Object.values(LambdaLogLevel)).toEqual([...LAMBDA_LOG_LEVELS]);
    expect(stackPropsFromConfig(parseConfig({})).workflow?.lambdaLogLevel).toBe(LambdaLogLevel.INFO);
  });

  it('a missing default file means all defaults, a missing explicit file is an error', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-config-'));
    expect(loadConfig({ defaultDir: dir }).stackName).toBe(DEFAULT_STACK_NAME);
    expect(() => loadConfig({ path: 'nope.json', cwd: dir })).toThrow(/^nope\.json: file not found/);
  });

  it('a file that is not JSON is named', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-config-'));
    writeFileSync(path.join(dir, 'bad.json'), '{ "stackName": ');
    expect(() => loadConfig({ path: 'bad.json', cwd: dir })).toThrow(/^bad\.json: is not valid JSON/);
  });

  it('the repo sample deploys no enabled schedule: its one schedule is a disabled, labelled example', () => {
    const config = loadConfig({ defaultDir: root });
    expect(config.schedules).toHaveLength(1);
    expect(config.schedules[0]).toMatchObject({ enabled: false, description: expect.stringMatching(/^EXAMPLE/) });
    expect(config.triggers).toEqual([]);
  });

  it('the full example sets every field and reads a schedule input from a file next to it', () => {
    // Every field the schema has, so the example the README calls complete stays complete.
    const schema = JSON.parse(readFileSync(path.join(root, 'schema', 'webrun-config.schema.json'), 'utf8')) as { properties: Record<string, unknown> };
    const written = JSON.parse(readFileSync(path.join(root, 'examples', 'config', 'full.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(schema.properties).filter((field) => !(field in written))).toEqual([]);
    const config = loadConfig({ path: 'examples/config/full.json', cwd: root });
    expect(config).toMatchObject({ stackName: 'WebrunSfnProd', apiKeySecretName: 'webrun/api-key', alarmEmail: 'ops@example.com', questionEmail: 'buyer@example.com', costAlarmUsd: 25, logLevel: 'ALL', logRetentionDays: 90 });
    const monday = config.schedules.find((s) => s.name === 'monday-report');
    expect(monday?.inputFile).toBe(path.join(root, 'examples/config/monday-report.input.json'));
    expect(monday?.input).toMatchObject({ tasks: [{ taskDetails: "Open last week's traffic report" }, expect.anything()] });
    expect(config.triggers.map((t) => [t.name, t.inputPath])).toEqual([['new-upload', undefined], ['app-request', '$.detail']]);
  });

  it('a trigger without input passes the event detail by default', () => {
    expect(parseConfig({ triggers: [trigger()] }).triggers[0]).toMatchObject({ inputPath: '$.detail', enabled: true });
  });
});

describe('config errors name the file and the field', () => {
  it.each([
    [{ stackNme: 'x' }, /^webrun\.config\.json: stackNme: is not a known field/],
    [{ stackName: '1abc' }, /^webrun\.config\.json: stackName: must start with a letter/],
    [{ baseUrl: 'http://connect.webrun.ai' }, /^webrun\.config\.json: baseUrl: must be https/],
    [{ baseUrl: 'not a url' }, /^webrun\.config\.json: baseUrl: is not a URL/],
    [{ alarmEmail: 'ops' }, /^webrun\.config\.json: alarmEmail: is not an e-mail address/],
    [{ questionEmail: 'buyer at example.com' }, /^webrun\.config\.json: questionEmail: is not an e-mail address/],
    [{ costAlarmUsd: 0 }, /^webrun\.config\.json: costAlarmUsd: must be a positive number of US dollars/],
    [{ costAlarmUsd: '25' }, /^webrun\.config\.json: costAlarmUsd: must be a number of US dollars/],
    [{ logLevel: 'DEBUG' }, /^webrun\.config\.json: logLevel: must be one of OFF, ERROR, FATAL, ALL/],
    [{ lambdaLogLevel: 'TRACE' }, /^webrun\.config\.json: lambdaLogLevel: must be one of DEBUG, INFO, WARN, ERROR/],
    [{ logRetentionDays: 31 }, /^webrun\.config\.json: logRetentionDays: must be one of 1, 3, 5/],
    [{ includeExecutionData: 'no' }, /^webrun\.config\.json: includeExecutionData: must be true or false/],
    [{ apiKeySecretName: 'bad name!' }, /^webrun\.config\.json: apiKeySecretName: is not a valid secret name/],
    [{ apiKeySecretName: 'k'.repeat(513) }, /^webrun\.config\.json: apiKeySecretName: is not a valid secret name \(1-512 /],
    // Such a name in a partial ARN is taken for a complete ARN's random suffix: the deployed Lambdas would never find it.
    [{ apiKeySecretName: 'prod-webrun' }, /^webrun\.config\.json: apiKeySecretName: must not end in a hyphen and six characters \("-webrun"\): Secrets Manager takes them for the random suffix of a complete ARN/],
    [{ apiKeySecretName: 'team/my-apikey' }, /^webrun\.config\.json: apiKeySecretName: must not end in a hyphen and six characters \("-apikey"\).*, got "team\/my-apikey"$/],
    [{ stackName: 'S'.repeat(129) }, /^webrun\.config\.json: stackName: must start with a letter, hold only letters, digits and "-", and be at most 128 characters/],
    [{ schedules: {} }, /^webrun\.config\.json: schedules: must be an array/],
    [{ completion: 'push' }, /^webrun\.config\.json: completion: must be one of poll, webhook, got "push"/],
    [{ inlineResultBytes: 20_000 }, /^webrun\.config\.json: inlineResultBytes: must be between 0 and 16384, got 20000/],
    [{ resultRetentionDays: 0 }, /^webrun\.config\.json: resultRetentionDays: must be between 1 and 3650, got 0/],
  ])('%j', (raw, message) => {
    expect(problem(raw)).toMatch(message);
  });

  it('apiKeySecretName: a name whose last hyphen has other than six characters after it is taken, as it is found by its partial ARN', () => {
    for (const name of ['webrun/api-key', 'prod-webrun1', 'prod-webru', 'webrun', 'a-b-c', 'prod-webrun/key']) expect(parseConfig({ apiKeySecretName: name }).apiKeySecretName).toBe(name);
  });

  it('apiKeySecretName given to WebrunStack in code is checked as the config file checks it', () => {
    // Checked first thing: no functions are made, nor bundled.
    expect(() => new WebrunStack(new App(), 'S', { apiKeySecretName: 'prod-webrun' })).toThrow(
      'WebrunStack: apiKeySecretName must not end in a hyphen and six characters ("-webrun"): Secrets Manager takes them for the random suffix of a complete ARN and does not find the secret; rename the secret, got "prod-webrun"',
    );
  });

  it.each([
    [schedule({ expression: 'every day' }), 'schedules[0].expression: must be rate(<n> minutes|hours|days), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss), got "every day"'],
    [schedule({ expression: 'cron(0 9 * * *)' }), 'schedules[0].expression: a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), this one has 5, got "cron(0 9 * * *)"'],
    // Refused at synth, naming the field, rather than by EventBridge Scheduler at deploy time.
    [schedule({ expression: 'cron(0 9 ? * 2#1,6#3 *)' }), 'schedules[0].expression: "2#1" must be the whole day-of-week field, got "2#1,6#3", got "cron(0 9 ? * 2#1,6#3 *)"'],
    [schedule({ expression: 'cron(0 9 ? * MON/2 *)' }), 'schedules[0].expression: the day-of-week field takes no increments ("/"): list the days instead, got "MON/2", got "cron(0 9 ? * MON/2 *)"'],
    [schedule({ timezone: 'Mars/Olympus' }), 'schedules[0].timezone: is not an IANA time zone (like "Europe/Paris"), got "Mars/Olympus"'],
    [schedule({ name: 'has space' }), 'schedules[0].name: must be 1-48 letters, digits, "-" or "_", starting with a letter or digit, got "has space"'],
    [schedule({ inputFile: 'x.json' }), 'schedules[0]: needs exactly one of "input" and "inputFile"'],
    [{ name: 'x', expression: 'rate(1 hour)' }, 'schedules[0]: needs exactly one of "input" and "inputFile"'],
    [schedule({ input: { tasks: [{ taskDetails: '' }] } }), 'schedules[0].input.tasks[0].taskDetails: must not be empty'],
    [schedule({ input: { tasks: [] } }), 'schedules[0].input.tasks: must contain at least one task'],
    [schedule({ input: { tasks: [{ taskDetails: 'x', maxDuration: 999_999 }] } }), 'schedules[0].input.tasks[0].maxDuration: must be between 1000 and 300000, got 999999'],
    [schedule({ input: [] }), 'schedules[0].input: must be a workflow input object with "tasks", got an array'],
    [schedule({ enabled: 'yes' }), 'schedules[0].enabled: must be true or false, got string "yes"'],
    [schedule({ every: 1 }), 'schedules[0].every: is not a known field (allowed: name, expression, timezone, input, inputFile, description, enabled)'],
  ])('schedule %j', (s, message) => {
    expect(problem({ schedules: [s] })).toBe(`webrun.config.json: ${message}`);
  });

  it('a second schedule with the same name is named by its index', () => {
    expect(problem({ schedules: [schedule(), schedule()] })).toBe('webrun.config.json: schedules[1].name: "daily" is used twice');
  });

  it('an input file that is missing or not a valid input is named with its path', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-config-'));
    expect(problem({ schedules: [{ name: 'a', expression: 'rate(5 minutes)', inputFile: 'missing.json' }] }, dir)).toBe('webrun.config.json: schedules[0].inputFile: cannot read missing.json: ENOENT');
    writeFileSync(path.join(dir, 'in.json'), JSON.stringify({ tasks: [{ taskDetails: 'x', outputType: 'xml' }] }));
    expect(problem({ schedules: [{ name: 'a', expression: 'rate(5 minutes)', inputFile: 'in.json' }] }, dir))
      .toBe('webrun.config.json: schedules[0].inputFile (in.json).tasks[0].outputType: must be one of text, structured_json, structured_csv, got "xml"');
  });

  it.each([
    [trigger({ eventPattern: {} }), 'triggers[0].eventPattern: must be a non-empty EventBridge event pattern object, got an object'],
    [trigger({ eventPattern: { detailType: ['x'] } }), 'triggers[0].eventPattern.detailType: is not a known field (allowed: version, id, detail-type, source, account, time, region, resources, detail)'],
    [trigger({ eventPattern: { source: 'aws.s3' } }), 'triggers[0].eventPattern.source: must be an array of values to match (e.g. ["aws.s3"]) or an object of such arrays, got string "aws.s3"'],
    [trigger({ eventPattern: { source: ['a'], detail: { bucket: { name: [] } } } }), 'triggers[0].eventPattern.detail.bucket.name: must not be an empty array (it would match nothing)'],
    // A typo in a content filter would only be refused by the deploy.
    [trigger({ eventPattern: { source: [{ prefx: 'com.' }] } }), 'triggers[0].eventPattern.source[0]: "prefx" is not an EventBridge content filter (prefix, suffix, equals-ignore-case, wildcard, cidr, exists, numeric, anything-but)'],
    [trigger({ eventPattern: { 'detail-type': [['x']] } }), 'triggers[0].eventPattern.detail-type[0]: must be a value or a content filter with one operator (prefix, suffix, equals-ignore-case, wildcard, cidr, exists, numeric, anything-but), got an array'],
    [trigger({ eventPattern: { source: [{ prefix: 1 }] } }), 'triggers[0].eventPattern.source[0]: "prefix" cannot take number 1'],
    // "numeric" is operator/number pairs, "cidr" an IP block: anything else passed synth and failed the deploy.
    ...[[['>', 'x']], [[1, 2]], [['>', 0, '<']], [['<', 5, '>', 0]], [['>', 5, '<=', 5]], [['==', 1]], [['>', 0, '<=', 5, '<', 9]], [['=', '300']], [[]], ['>'], [{ '>': 0 }]]
      .map(([value]) => [
        trigger({ eventPattern: { source: ['a'], detail: { size: [{ numeric: value }] } } }),
        `triggers[0].eventPattern.detail.size[0]: "numeric" takes an operator and a number (["=", 300], [">", 0]) or a range from ">" or ">=" a number to "<" or "<=" a larger one ([">", 0, "<=", 5]), got ${JSON.stringify(value)}`,
      ]),
    ...['not-a-cidr', '10.0.0.0', '10.0.0.0/33', '256.0.0.0/8', '10.0.0/8', '2001:db8::/129', 'fe80::1%eth0/64', '10.0.0.0/24/1', '10.0.0.0/-1', 3]
      .map((value) => [
        trigger({ eventPattern: { source: ['a'], detail: { ip: [{ cidr: value }] } } }),
        `triggers[0].eventPattern.detail.ip[0]: "cidr" takes an IPv4 or IPv6 CIDR block like "10.0.0.0/24" or "2001:db8::/32", got ${JSON.stringify(value)}`,
      ]),
    [trigger({ eventPattern: { source: [{}] } }), 'triggers[0].eventPattern.source[0]: must be a value or a content filter with one operator (prefix, suffix, equals-ignore-case, wildcard, cidr, exists, numeric, anything-but), got an object'],
    [trigger({ input: task, inputPath: '$.detail' }), 'triggers[0]: give either "input" or "inputPath", not both'],
    [trigger({ inputPath: 'detail' }), 'triggers[0].inputPath: must be a JSONPath into the event like "$.detail", got "detail"'],
    [trigger({ input: { tasks: [{ taskDetails: 'x' }], session: { startingPoint: 'ftp://x' } } }), 'triggers[0].input.session.startingPoint: must be an http(s) URL, got ftp:'],
    // A rule's target takes at most 8,192 characters of input: CloudFormation would refuse the deploy.
    [trigger({ input: { tasks: [{ taskDetails: `${'x'.repeat(8_200)} <$.detail.id>` }] } }), 'triggers[0].input: is 8244 characters of JSON; an EventBridge rule passes at most 8192 to its target (put a larger input in the event, and use "inputPath")'],
    // An input transformer reads at most 100 event fields.
    [trigger({ input: { tasks: [{ taskDetails: Array.from({ length: 101 }, (_, i) => `<$.detail.f${i}>`).join(' ') }] } }), 'triggers[0].input: refers to 101 event fields; an EventBridge rule fills in at most 100 (use "inputPath" to pass the event part whole)'],
  ])('trigger %j', (t, message) => {
    expect(problem({ triggers: [t] })).toBe(`webrun.config.json: ${message}`);
  });

  describe('an event pattern is at most 2,048 characters of JSON, EventBridge\'s quota: a larger one synthesized and failed the deploy', () => {
    /** A pattern whose compact JSON is exactly `chars` characters, detail-type and a nested field included. */
    const patternOf = (chars: number) => {
      const base = JSON.stringify({ source: ['com.example'], 'detail-type': ['Order'], detail: { id: [''] } }).length;
      return { source: ['com.example'], 'detail-type': ['Order'], detail: { id: ['x'.repeat(chars - base)] } };
    };

    it('refuses 2,049 characters, naming the trigger, the size and the quota', () => {
      expect(problem({ triggers: [trigger(), trigger({ name: 'orders', eventPattern: patternOf(2_049) })] })).toBe(
        'webrun.config.json: triggers[1].eventPattern: is 2049 characters of JSON, over EventBridge\'s quota of 2048 characters for an event pattern (split it into two triggers, or match fewer values)',
      );
      // Many short values add up as one long one does: 150 keys to match are 2,630 characters.
      const many = { source: ['aws.s3'], detail: { key: Array.from({ length: 150 }, (_, i) => `in/file-${i}.csv`) } };
      expect(problem({ triggers: [trigger({ eventPattern: many })] })).toBe('webrun.config.json: triggers[0].eventPattern: is 2630 characters of JSON, over EventBridge\'s quota of 2048 characters for an event pattern (split it into two triggers, or match fewer values)');
    });

    it('accepts 2,048 characters, which is also the pattern\'s size in the synthesized rule', () => {
      const eventPattern = patternOf(2_048);
      expect(parseConfig({ triggers: [trigger({ eventPattern })] }).triggers[0].eventPattern).toEqual(eventPattern);
      const stack = new Stack(new App(), 'Rule');
      new events.Rule(stack, 'Trigger', { eventPattern: toEventPattern(eventPattern) });
      const [rule] = Object.values(Template.fromStack(stack).findResources('AWS::Events::Rule')) as Array<{ Properties: { EventPattern: unknown } }>;
      expect(JSON.stringify(rule.Properties.EventPattern)).toHaveLength(2_048);
    });
  });

  it('accepts the content filters EventBridge documents', () => {
    const eventPattern = {
      source: ['aws.s3', { prefix: 'com.example.' }],
      detail: {
        key: [{ suffix: '.csv' }, { prefix: { 'equals-ignore-case': 'IN/' } }, { wildcard: 'in/*.csv' }],
        size: [{ numeric: ['>', 0, '<=', 5_000_000] }, { numeric: ['=', 300] }, { numeric: ['<', -1.5] }, { numeric: ['>=', 1e3, '<', 1.5e3] }, { numeric: ['<=', 0] }, { numeric: ['>', 7] }],
        bucket: { name: [{ 'anything-but': ['logs', 'tmp'] }], region: [{ 'anything-but': { prefix: 'cn-' } }] },
        owner: [{ exists: true }],
        ip: [{ cidr: '10.0.0.0/24' }, { cidr: '0.0.0.0/0' }, { cidr: '192.168.1.7/32' }, { cidr: '2001:db8::/32' }, { cidr: '::ffff:10.0.0.0/120' }, { cidr: '::/0' }],
        state: [{ 'equals-ignore-case': 'created' }, null, 3, true],
      },
    };
    expect(parseConfig({ triggers: [trigger({ eventPattern })] }).triggers[0].eventPattern).toEqual(eventPattern);
  });

  it('event references in a trigger input are validated with a sample value', () => {
    const ok = parseConfig({ triggers: [trigger({ input: { tasks: [{ taskDetails: 'Process <$.detail.object.key>' }], session: { startingPoint: 'https://example.com/<$.detail.id>' } } })] });
    expect(ok.triggers[0].input).toMatchObject({ tasks: [{ taskDetails: 'Process <$.detail.object.key>' }] });
  });
});

describe('schedule expressions', () => {
  it.each([
    'rate(1 minute)', 'rate(5 minutes)', 'rate(2 hours)', 'rate(1 day)', 'cron(0 9 ? * MON-FRI *)', 'cron(15 10 1 * ? 2030)', 'cron(0/5 * * * ? *)',
    'cron(*/15 8-17 ? * MON-FRI *)', 'cron(0,30 0 L * ? *)', 'cron(0 0 LW * ? *)', 'cron(0 8 15W * ? *)', 'cron(15 10 ? * 6L 2030-2035)',
    'cron(0 9 ? JAN-MAR/2 2#1 *)', 'cron(59 23 31 DEC ? 2199)', 'at(2030-01-01T09:00:00)', 'at(2032-02-29T23:59:59)',
    // What the EventBridge cron reference documents, each field at its edges.
    'cron(0 10 * * ? *)', 'cron(0/10 * ? * MON-FRI *)', 'cron(0/5 8-17 ? * MON-FRI *)', 'cron(0 9 ? * FRI#2 *)', 'cron(0 9 ? * 3#5 *)',
    'cron(0 9 ? * L *)', 'cron(0 9 ? * SAT,SUN *)', 'cron(0 9 ? * 1-7 *)', 'cron(0 9 ? * mon-fri *)', 'cron(0 9 3W * ? *)', 'cron(0 9 1-15/2 * ? *)',
    'cron(0-30/10 0-23/6 */2 1-12/3 ? 1970-2199/5)', 'cron(0 9 ? * 2-2 *)',
  ])('accepts %s', (e) => {
    expect(scheduleExpressionProblem(e)).toBeUndefined();
  });

  it.each([
    ['rate(0 minutes)', /at least 1/],
    ['rate(5 weeks)', /must be rate/],
    ['rate(1 hours)', 'a rate of 1 takes the unit "hour": rate(1 hour)'],
    ['rate(5 minute)', 'a rate of 5 takes the unit "minutes": rate(5 minutes)'],
    // Each field's range, as EventBridge Scheduler would refuse it at deploy time.
    ['cron(61 7 ? * MON *)', 'the minutes field takes 0-59, ranges, lists and increments, got "61"'],
    ['cron(0 24 * * ? *)', 'the hours field takes 0-23, ranges, lists and increments, got "24"'],
    ['cron(0 9 1-32 * ? *)', 'the day-of-month field takes 1-31, ranges, lists and increments, got "1-32"'],
    ['cron(0 9 32W * ? *)', 'the day-of-month field takes 1-31, ranges, lists and increments, got "32W"'],
    ['cron(0 9 1 13 ? *)', 'the month field takes 1-12 or JAN-DEC, ranges, lists and increments, got "13"'],
    ['cron(0 9 ? * FRY *)', 'the day-of-week field takes 1-7 or SUN-SAT, ranges and lists, got "FRY"'],
    ['cron(0 9 ? * 2#6 *)', 'the day-of-week field\'s "#" takes the week of the month, 1-5, got "2#6"'],
    ['cron(0 9 1 * ? 1969)', 'the year field takes 1970-2199, ranges, lists and increments, got "1969"'],
    ['cron(0/0 * * * ? *)', 'the minutes field takes 0-59, ranges, lists and increments, got "0/0"'],
    ['cron(0,,30 * * * ? *)', 'the minutes field takes 0-59, ranges, lists and increments, got ""'],
    ['cron(? 9 1 * ? *)', 'the minutes field takes 0-59, ranges, lists and increments, got "?"'],
    ['cron(0 9 * * * *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 9 ?,1 * ? *)', '"?" must be the whole day-of-month field, got "?,1"'],
    // The EventBridge cron reference: a "#" expression is the only one in its field ("3#1,6#3" is not valid), and
    // day-of-week takes no "/" (its wildcards are , - * ? L #). Both passed synth and failed the deploy.
    ['cron(0 9 ? * 2#1,6#3 *)', '"2#1" must be the whole day-of-week field, got "2#1,6#3"'],
    ['cron(0 9 ? * MON#1,FRI *)', '"MON#1" must be the whole day-of-week field, got "MON#1,FRI"'],
    ['cron(0 9 ? * 1/2 *)', 'the day-of-week field takes no increments ("/"): list the days instead, got "1/2"'],
    ['cron(0 9 ? * MON/2 *)', 'the day-of-week field takes no increments ("/"): list the days instead, got "MON/2"'],
    ['cron(0 9 ? * */2 *)', 'the day-of-week field takes no increments ("/"): list the days instead, got "*/2"'],
    ['cron(0 9 ? * 2#0 *)', 'the day-of-week field\'s "#" takes the week of the month, 1-5, got "2#0"'],
    // L and W stand for the whole field too, and only where the reference lists them.
    ['cron(0 9 1,L * ? *)', '"L" must be the whole day-of-month field, got "1,L"'],
    ['cron(0 9 1W,15W * ? *)', '"1W" must be the whole day-of-month field, got "1W,15W"'],
    ['cron(0 9 ? * SAT,L *)', '"L" must be the whole day-of-week field, got "SAT,L"'],
    ['cron(0 9 L-3 * ? *)', 'the day-of-month field takes 1-31, ranges, lists and increments, got "L-3"'],
    ['cron(0 9 15L * ? *)', 'the day-of-month field takes 1-31, ranges, lists and increments, got "15L"'],
    ['cron(0 9 ? * 9L *)', 'the day-of-week field takes 1-7 or SUN-SAT, ranges and lists, got "9L"'],
    ['cron(0 9 ? * 2W *)', 'the day-of-week field takes 1-7 or SUN-SAT, ranges and lists, got "2W"'],
    ['cron(0 9 1#2 * ? *)', 'the day-of-month field takes 1-31, ranges, lists and increments, got "1#2"'],
    ['cron(0 9 ? L * *)', 'the month field takes 1-12 or JAN-DEC, ranges, lists and increments, got "L"'],
    // Ranges run from low to high; one over the field's end is written as two.
    ['cron(0 22-2 * * ? *)', 'the hours range "22-2" runs backwards: write 22-23,0-2'],
    ['cron(0 9 ? * FRI-MON *)', 'the day-of-week range "FRI-MON" runs backwards: write FRI-SAT,SUN-MON'],
    ['cron(0 9 ? * SAT-SUN *)', 'the day-of-week range "SAT-SUN" runs backwards: write SAT,SUN'],
    ['cron(0 23-0 * * ? *)', 'the hours range "23-0" runs backwards: write 23,0'],
    ['cron(50-10/5 * * * ? *)', 'the minutes range "50-10" runs backwards'],
    ['cron(0 9 1 * ? 2035-2030)', 'the year range "2035-2030" runs backwards'],
    ['cron(0 9 ? * MON-FRY *)', 'the day-of-week field takes 1-7 or SUN-SAT, ranges and lists, got "MON-FRY"'],
    // Date.parse rolls these over to a real date; EventBridge Scheduler refuses them.
    ['at(2030-02-30T09:00:00)', '2030-02-30T09:00:00 is not a valid date and time'],
    ['at(2030-01-01T24:00:00)', '2030-01-01T24:00:00 is not a valid date and time'],
    ['cron(0 9 ? * ? *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 9 ? * MON-FRI * *)', /6 fields/],
    ['at(2030-13-01T09:00:00)', /not a valid date/],
    ['at(tomorrow)', /must be rate/],
  ])('rejects %s', (e, message) => {
    expect(scheduleExpressionProblem(e)).toMatch(message);
  });
});

describe('cdk synth with a wrong config', () => {
  it('fails before synthesis with the message naming the field', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-config-'));
    const file = path.join(dir, 'bad.config.json');
    writeFileSync(file, JSON.stringify({ schedules: [schedule({ expression: 'rate(soon)' })] }));
    const run = spawnSync(process.execPath, ['--require', 'tsx/cjs', path.join(root, 'bin', 'app.ts')], {
      cwd: root,
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ 'webrun:config': file, 'aws:cdk:bundling-stacks': [] }), CDK_OUTDIR: path.join(dir, 'out') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`webrun-sfn: ${file}: schedules[0].expression: must be rate(<n> minutes|hours|days)`);
  });
});

describe('a config with several mistakes reports all of them', () => {
  /** The ConfigFileError parseConfig throws for `raw`. */
  function refusal(raw: unknown, baseDir = root): ConfigFileError {
    try {
      parseConfig(raw, 'webrun.config.json', baseDir);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigFileError);
      return err as ConfigFileError;
    }
    throw new Error('expected the config to be rejected');
  }

  it('lists each problem on its own line, in the order of the file, and keeps them in `issues`', () => {
    const err = refusal({
      stackNme: 'x',
      logLevel: 'DEBUG',
      includeExecutionData: 'no',
      schedules: [schedule({ expression: 'every day', input: { tasks: [{ taskDetails: '', maxDuration: 0 }] } }), schedule({ enabled: 'yes' })],
      triggers: [trigger({ eventPattern: { source: 'aws.s3' }, inputPath: 'detail' })],
    });
    const lines = [
      'logLevel: must be one of OFF, ERROR, FATAL, ALL, got "DEBUG"',
      'includeExecutionData: must be true or false, got string "no"',
      'schedules[0].expression: must be rate(<n> minutes|hours|days), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss), got "every day"',
      'schedules[0].input.tasks[0].taskDetails: must not be empty',
      'schedules[0].input.tasks[0].maxDuration: must be between 1000 and 300000, got 0',
      'schedules[1].enabled: must be true or false, got string "yes"',
      'schedules[1].name: "daily" is used twice',
      'triggers[0].eventPattern.source: must be an array of values to match (e.g. ["aws.s3"]) or an object of such arrays, got string "aws.s3"',
      'triggers[0].inputPath: must be a JSONPath into the event like "$.detail", got "detail"',
      'stackNme: is not a known field (allowed: stackName, apiKeySecretName, baseUrl, alarmEmail, questionEmail, costAlarmUsd, logLevel, includeExecutionData, lambdaLogLevel, logRetentionDays, completion, inlineResultBytes, resultRetentionDays, batch, schedules, triggers)',
    ];
    expect(err.message).toBe(lines.map((line) => `webrun.config.json: ${line}`).join('\n'));
    expect(err.source).toBe('webrun.config.json');
    expect(err.issues.map((i) => `${i.field}: ${i.problem}`)).toEqual(lines);
    expect([err.field, err.problem]).toEqual(['logLevel', 'must be one of OFF, ERROR, FATAL, ALL, got "DEBUG"']);
  });

  it('a problem in an input file is listed with the others', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webrun-config-'));
    writeFileSync(path.join(dir, 'in.json'), JSON.stringify({ tasks: [{ taskDetails: '\u200B' }, { taskDetails: 'x', colour: 'red' }] }));
    const err = refusal({ alarmEmail: 'ops', schedules: [{ name: 'a', expression: 'rate(5 minutes)', inputFile: 'in.json' }, { name: 'b', expression: 'rate(5 minutes)', inputFile: 'gone.json' }] }, dir);
    expect(err.issues.map((i) => `${i.field}: ${i.problem}`)).toEqual([
      'alarmEmail: is not an e-mail address: "ops"',
      'schedules[0].inputFile (in.json).tasks[0].taskDetails: must not be empty',
      expect.stringMatching(/^schedules\[0\]\.inputFile \(in\.json\)\.tasks\[1\]\.colour: is not a known field \(allowed: taskDetails, /),
      'schedules[1].inputFile: cannot read gone.json: ENOENT',
    ]);
  });

  it('lists at most 50 problems and counts the rest', () => {
    const err = refusal({ schedules: Array.from({ length: 60 }, (_, i) => schedule({ name: `s${i}`, enabled: 'yes' })) });
    expect(err.issues).toHaveLength(60);
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(51);
    expect(lines[50]).toBe('webrun.config.json: and 10 more problems');
  });
});

describe('config validation reuses the input schema and bounds every nesting', () => {
  let deep: unknown = [];
  for (let i = 0; i < 5_000; i++) deep = [deep];
  let deepSchema: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < 3_000; i++) deepSchema = { type: 'object', properties: { a: deepSchema } };
  const deepInput = { tasks: [{ taskDetails: 'x', outputType: 'structured_json', outputSchema: deepSchema }] };

  it.each([
    ['a schedule input', { schedules: [schedule({ input: deepInput })] }, 'schedules[0].input.tasks[0].outputSchema: is nested too deeply (more than 32 levels)'],
    ['a trigger input (before its event references are filled)', { triggers: [trigger({ input: deepInput })] }, 'triggers[0].input.tasks[0].outputSchema: is nested too deeply (more than 32 levels)'],
    ['an event pattern', { triggers: [trigger({ eventPattern: { source: ['a'], detail: { x: deep } } })] }, 'triggers[0].eventPattern.detail: is nested too deeply (more than 32 levels)'],
  ])('%s nested thousands deep is refused, not a stack overflow', (_name, raw, message) => {
    expect(() => parseConfig(raw)).toThrow(ConfigFileError);
    expect(problem(raw).replace(/^webrun\.config\.json: /, '')).toEqual(message);
  });

  it('an event pattern object nested deeper than 32 levels is refused', () => {
    let pattern: Record<string, unknown> = { k: ['v'] };
    for (let i = 0; i < 100; i++) pattern = { k: pattern };
    expect(problem({ triggers: [trigger({ eventPattern: { detail: pattern } })] })).toBe('webrun.config.json: triggers[0].eventPattern.detail: is nested too deeply (more than 32 levels)');
  });

  it('names of invisible characters only are empty', () => {
    expect(problem({ schedules: [schedule({ name: '\u200B\u200D' })] })).toBe('webrun.config.json: schedules[0].name: must not be empty');
    expect(problem({ stackName: '\uFEFF' })).toBe('webrun.config.json: stackName: must not be empty');
  });
});

describe('"$schema" (for editors)', () => {
  it('is accepted at the top of the config and absent from the result', () => {
    const config = parseConfig({ $schema: './schema/webrun-config.schema.json', stackName: 'Abc' });
    expect(config.stackName).toBe('Abc');
    expect('$schema' in config).toBe(false);
  });

  it('is accepted in a schedule input, as a workflow input file may carry one (the state machine ignores it)', () => {
    const config = parseConfig({ schedules: [schedule({ input: { $schema: '../schema/workflow-input.schema.json', ...task } })] });
    expect(config.schedules[0].input).toMatchObject(task);
  });

  it('is not a field of a schedule or a trigger', () => {
    expect(problem({ schedules: [schedule({ $schema: 'x' })] })).toMatch(/^webrun\.config\.json: schedules\[0\]\.\$schema: is not a known field/);
    expect(problem({ triggers: [trigger({ $schema: 'x' })] })).toMatch(/^webrun\.config\.json: triggers\[0\]\.\$schema: is not a known field/);
  });
});
