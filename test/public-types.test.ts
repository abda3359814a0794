/**
 * The package's exported types as a TypeScript app uses them (the repository's type check, test/types.test.ts,
 * checks this file too): the documented minimal input, schedules and triggers without their defaults, and every
 * type the output's types are made of. At run time, each value typed here is what the code accepts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib/core';
import { Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { describe, expect, it } from 'vitest';
import { WebrunTriggers, type AnsweredGuardrail, type ScheduleConfig, type TriggerConfig, type WorkflowInput, type WorkflowOutput } from '../index';
import { validateWorkflowInput } from '../lambdas/shared/input';

/** README: "Only tasks[].taskDetails is required." */
const minimal: WorkflowInput = { tasks: [{ taskDetails: 'Read the page title' }] };
const withVars: WorkflowInput = { $schema: '../schema/workflow-input.schema.json', vars: { sku: 'A1' }, session: { maxCostUsd: 2 }, tasks: [{ taskDetails: 'Find {{sku}}', maxDuration: 60_000 }] };
/** README "Guardrails and budgets": ask's timeoutSeconds defaults to 240. */
const asking: WorkflowInput = { session: { guardrails: { ask: {} } }, tasks: [{ taskDetails: 'Buy it', guardrails: { ask: {}, maxAnswers: 2 } }] };
// @ts-expect-error a misspelt field is a type error, as it is an InvalidInput at run time
const misspelt: WorkflowInput = { tasks: [{ taskDetail: 'x' }] };
/** README "Schedules" and "Event triggers": `enabled` is true unless set. */
const schedule: ScheduleConfig = { name: 'nightly', expression: 'rate(1 day)', input: minimal };
const trigger: TriggerConfig = { name: 'new-upload', eventPattern: { source: ['aws.s3'] } };
/** A type the output's results are made of, nameable by an app that emits declarations. */
const answered = (output: WorkflowOutput): AnsweredGuardrail[] => output.tasks.flatMap((t) => t.guardrails ?? []);

/** Where the input's JSON Schema has a default, by path. */
function defaultsOf(node: unknown, at = '$', found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n, i) => defaultsOf(n, `${at}[${i}]`, found));
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'default') found.push(at);
      else defaultsOf(value, `${at}.${key}`, found);
    }
  }
  return found;
}

describe('the exported types', () => {
  it('leave out every default the input schema has (a new default must be optional in WorkflowInputDocument too)', () => {
    const schema = JSON.parse(readFileSync(join(__dirname, '..', 'schema', 'workflow-input.schema.json'), 'utf8')) as unknown;
    // The fields whose defaults WorkflowInputDocument leaves out: session, tasks[].maxDuration, guardrails.ask.timeoutSeconds.
    expect(defaultsOf(schema).map((path) => path.replace(/^.*\.properties\./, ''))).toEqual(['timeoutSeconds', 'session', 'maxDuration', 'timeoutSeconds']);
  });

  it('type the inputs the code accepts: the minimal input, one with vars, schedules and triggers without defaults', () => {
    expect(validateWorkflowInput(minimal).tasks[0].maxDuration).toBe(300_000);
    expect(validateWorkflowInput(withVars).tasks[0].taskDetails).toBe('Find A1');
    expect(validateWorkflowInput(asking).tasks[0].guardrails?.ask).toEqual({ timeoutSeconds: 240 });
    expect(() => validateWorkflowInput(misspelt)).toThrow(/taskDetail/);
    const stack = new Stack(new App());
    const stateMachine = new sfn.StateMachine(stack, 'Machine', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, 'Pass')) });
    new WebrunTriggers(stack, 'Triggers', { stateMachine, schedules: [schedule], triggers: [trigger] });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Scheduler::Schedule', { State: 'ENABLED' });
    template.hasResourceProperties('AWS::Events::Rule', { State: 'ENABLED' });
    // In code the input is given itself: a JavaScript app that passes a config file's inputFile is told so.
    expect(() => new WebrunTriggers(stack, 'FromFile', { stateMachine, schedules: [{ name: 'a', expression: 'rate(1 day)', inputFile: 'in.json' } as unknown as ScheduleConfig] }))
      .toThrow('WebrunTriggers: schedules[0].inputFile is for webrun.config.json only: give the input itself as "input"');
    expect(answered({ sessionId: 's', tasks: [{ index: 0, taskId: 't', status: 'completed', result: {}, guardrails: [{ question: 'Confirm?', answeredBy: 'rule' }] }] })).toHaveLength(1);
  });
});
