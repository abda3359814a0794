/**
 * Starts the workflow without a person: EventBridge Scheduler schedules and EventBridge rules on the default bus,
 * both with a retry policy and one dead-letter queue for the starts that still fail (throttled, state machine
 * missing, access denied, ...). Schedules and triggers are checked as lib/config.ts checks the config file's, each
 * input with the state machine's own input validator.
 */
import { Duration, TimeZone, Validations } from 'aws-cdk-lib/core';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { EVENT_REFERENCE, parseConfig, type EventPatternConfig, type ParsedTrigger, type ScheduleConfig, type TriggerConfig } from './config';

export interface WebrunTriggersProps {
  /** The state machine the schedules and rules start. */
  readonly stateMachine: sfn.IStateMachine;
  /** Schedules, checked at synth as the config file's are (lib/config.ts). @default none */
  readonly schedules?: readonly ScheduleConfig[];
  /** Event triggers, checked at synth as the config file's are (lib/config.ts). @default none */
  readonly triggers?: readonly TriggerConfig[];
  /**
   * How often EventBridge retries a start that failed before sending it to the dead-letter queue (0 to 185).
   * @default 3
   */
  readonly retryAttempts?: number;
  /**
   * How long a start is retried before it goes to the dead-letter queue (1 minute to 24 hours).
   * @default Duration.hours(1)
   */
  readonly maxEventAge?: Duration;
}

/** Schedules and event rules that start the workflow, sharing one dead-letter queue. */
export class WebrunTriggers extends Construct {
  /** Starts that failed after every retry land here (14 days), with the error in the message attributes. */
  public readonly deadLetterQueue: sqs.Queue;
  public readonly schedules: Record<string, scheduler.Schedule> = {};
  public readonly rules: Record<string, events.Rule> = {};

  constructor(scope: Construct, id: string, props: WebrunTriggersProps) {
    super(scope, id);
    const retryAttempts = props.retryAttempts ?? 3;
    const maxEventAge = props.maxEventAge ?? Duration.hours(1);
    if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 185) throw new Error(`WebrunTriggers: retryAttempts must be an integer from 0 to 185, got ${retryAttempts}`);
    // Checked as the config file's are (expressions, names, event patterns, each input as the workflow validates
    // it), also when another app gives them: otherwise a typo fails the deploy, or every run it starts.
    // A file is the config file's way to give an input (read relative to it, into `input`, when the config is
    // parsed); in code, the input is given itself.
    const fromFile = (props.schedules ?? []).findIndex((s) => (s as { inputFile?: unknown }).inputFile !== undefined && s.input === undefined);
    if (fromFile >= 0) throw new Error(`WebrunTriggers: schedules[${fromFile}].inputFile is for webrun.config.json only: give the input itself as "input"`);
    // The schedules and rules are made from what it gives back, defaults filled in.
    const given = (props.schedules ?? []).map((s) => {
      const { inputFile: _read, ...schedule } = s as ScheduleConfig & { inputFile?: string };
      return schedule;
    });
    const { schedules, triggers } = parseConfig({ schedules: given, triggers: props.triggers ?? [] }, 'WebrunTriggers');
    const ageSeconds = maxEventAge.toSeconds({ integral: false });
    if (!Number.isInteger(ageSeconds) || ageSeconds < 60 || ageSeconds > 86_400) {
      throw new Error(`WebrunTriggers: maxEventAge must be a whole number of seconds from 60 to 86400 (1 minute to 24 hours), got ${ageSeconds}`);
    }

    this.deadLetterQueue = new sqs.Queue(this, 'StartFailures', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter queue of the EventBridge Scheduler schedules and rules (their DeadLetterConfig, ' +
        'which cdk-nag does not see for schedules). Nothing consumes it automatically: an operator reads it, and the ' +
        'StartFailures alarm fires on its first message.',
    });
    const retry = { deadLetterQueue: this.deadLetterQueue, retryAttempts, maxEventAge };

    for (const s of schedules) {
      this.schedules[s.name] = new scheduler.Schedule(this, `Schedule-${s.name}`, {
        schedule: scheduler.ScheduleExpression.expression(s.expression, s.timezone ? TimeZone.of(s.timezone) : undefined),
        target: new schedulerTargets.StepFunctionsStartExecution(props.stateMachine, {
          ...retry,
          input: scheduler.ScheduleTargetInput.fromObject(s.input),
        }),
        description: `webrun-sfn schedule "${s.name}"${s.description ? `: ${s.description}` : ''}`.slice(0, 512),
        enabled: s.enabled,
      });
    }

    for (const t of triggers) {
      const rule = new events.Rule(this, `Trigger-${t.name}`, {
        description: `webrun-sfn trigger "${t.name}"${t.description ? `: ${t.description}` : ''}`.slice(0, 512),
        eventPattern: toEventPattern(t.eventPattern),
        enabled: t.enabled,
      });
      rule.addTarget(new eventsTargets.SfnStateMachine(props.stateMachine, { ...retry, input: triggerInput(t) }));
      this.rules[t.name] = rule;
    }
  }
}

/** EventBridge's JSON pattern (`detail-type`) as CDK's EventPattern (`detailType`). */
export function toEventPattern(p: EventPatternConfig): events.EventPattern {
  const pattern: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(p)) pattern[key === 'detail-type' ? 'detailType' : key] = value;
  return pattern as events.EventPattern;
}

/** A fixed input (with `<$.path>` references filled from the event), or a part of the event. */
export function triggerInput(t: ParsedTrigger): events.RuleTargetInput {
  if (t.input === undefined) return events.RuleTargetInput.fromEventPath(t.inputPath ?? '$.detail');
  return events.RuleTargetInput.fromObject(withEventFields(t.input));
}

function withEventFields(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(EVENT_REFERENCE, (_, path: string) => events.EventField.fromPath(path));
  if (Array.isArray(value)) return value.map(withEventFields);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withEventFields(v)]));
  return value;
}
