/**
 * A workflow as the local runner executes it: the definition that deploys (tokens resolved to placeholders), which
 * Lambda handler each Task state runs, and the settings, timeouts and memory the deployed functions get. It comes
 * from the construct (local/asl.ts synthesizes it in-process) or, for the command line, from the copy built by
 * `npm run definitions` (local/built/), which a test keeps equal to the synthesized one: `npm start` then needs
 * neither aws-cdk-lib nor a synth.
 */
import './polyfill';
import './library-shims';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import type { CompletionMode } from '../lambdas/shared/contract';
import type { HandlerName } from '../lambdas/shared/handlers';
import type { WorkflowSettings } from '../lambdas/shared/settings';
import { MAX_TIMER_MS } from './emulator/util';

export const PLACEHOLDER = { account: '123456789012', region: 'us-east-1', partition: 'aws' } as const;

export interface AslState {
  Type: string;
  Resource?: string;
  Seconds?: number;
  Retry?: Array<{ ErrorEquals: string[]; IntervalSeconds?: number }>;
  [key: string]: unknown;
}

/** Everything about a workflow but its executor: what `npm run definitions` writes. */
export interface WorkflowDescription {
  /** The synthesized definition, tokens resolved to placeholders. */
  definition: Record<string, unknown> & { States: Record<string, AslState> };
  /** Task state name → the handler its Lambda runs. */
  taskHandlers: Record<string, HandlerName>;
  /** The settings the deployed Lambdas get through their environment. */
  settings: WorkflowSettings;
  /** Each handler's Lambda timeout, in seconds: its invocations get that much time, as deployed. */
  timeouts: Record<HandlerName, number>;
  /** Each handler's Lambda memory, in MB (for cost figures). */
  memoryMb: Record<HandlerName, number>;
  /**
   * Task states that wait on a task token (completion by webhook, asking a person), with their TimeoutSecondsPath:
   * their Lambda answers, the token resumes them.
   */
  waitsForToken: Record<string, string | undefined>;
}

export interface LocalWorkflow extends WorkflowDescription {
  /** The executor for this definition, built (and its definition validated) once. */
  machine: StateMachine;
}

/**
 * The definition as the local executor gets it. One difference, for states that wait on a task token:
 * aws-local-stepfunctions resolves `TimeoutSecondsPath` against the state's payload instead of its input (Step
 * Functions uses the input), so the runner enforces that timeout itself, from the same path, scaled like every wait
 * (and executorFor leaves the library no timeout of its own there).
 */
function executable(definition: WorkflowDescription['definition'], waitsForToken: WorkflowDescription['waitsForToken']): WorkflowDescription['definition'] {
  const copy = structuredClone(definition);
  for (const name of Object.keys(waitsForToken)) delete copy.States[name].TimeoutSecondsPath;
  return copy;
}

/**
 * The longest a Task state may run locally when its definition sets no timeout: the longest timer Node.js has (24.8
 * days; a longer one fires at once). Step Functions sets none there (the execution's own timeout still applies), but
 * aws-local-stepfunctions gives every such Task state 60 seconds of real time: an answer to a guardrail question, a
 * doorbell or a batch's child execution that took longer failed with States.Timeout locally and not when deployed.
 */
export const NO_TIMEOUT_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/**
 * A copy of `definition` in which every Task state without a timeout of its own (nested ones too) has
 * NO_TIMEOUT_SECONDS, and no timeout, the execution's or a state's, is longer than that. The library sets each one
 * as a Node.js timer, which fires at once when longer: a workflow given the construct's longest execution timeout (a
 * year) failed with States.Timeout locally within milliseconds. Locally such a timeout then ends the run after 24.8
 * days instead of later: the strict side, for runs no laptop keeps going that long.
 */
export function withoutLibraryTimeouts<D extends object>(definition: D): D {
  const copy = structuredClone(definition);
  const bound = (holder: Record<string, unknown>): void => {
    if (typeof holder.TimeoutSeconds === 'number' && holder.TimeoutSeconds > NO_TIMEOUT_SECONDS) holder.TimeoutSeconds = NO_TIMEOUT_SECONDS;
  };
  const visit = (machine: { States?: Record<string, AslState>; TimeoutSeconds?: unknown } | undefined): void => {
    if (machine) bound(machine);
    for (const state of Object.values(machine?.States ?? {})) {
      if (state.Type === 'Task' && state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) state.TimeoutSeconds = NO_TIMEOUT_SECONDS;
      bound(state);
      visit(state.ItemProcessor as { States?: Record<string, AslState> } | undefined);
      visit(state.Iterator as { States?: Record<string, AslState> } | undefined);
      for (const branch of (state.Branches as Array<{ States?: Record<string, AslState> }> | undefined) ?? []) visit(branch);
    }
  };
  visit(copy as { States?: Record<string, AslState> });
  return copy;
}

/**
 * An executor for a definition; `validate` runs aws-local-stepfunctions' definition check on it (a few milliseconds,
 * once the first check in the process compiled its schemas: see library-shims.ts). It runs the definition with
 * withoutLibraryTimeouts, so a Task state is timed out where Step Functions would time it out, and nowhere else.
 */
export function executorFor(definition: object, validate: boolean): StateMachine {
  return new StateMachine(withoutLibraryTimeouts(definition) as never, { validationOptions: validate ? { checkArn: false } : { noValidate: true } });
}

/** Builds the executor once for a description; `validate` checks its definition (see executorFor). */
export function localWorkflow(description: WorkflowDescription, validate: boolean): LocalWorkflow {
  return { ...description, machine: executorFor(executable(description.definition, description.waitsForToken), validate) };
}

/** Where `npm run definitions` writes the built workflow of each completion mode. */
export const BUILT_DIR = path.join(__dirname, 'built');

/** What `npm run definitions` built for this completion mode (local/built/<mode>.json). */
export function builtDescription(mode: CompletionMode): WorkflowDescription {
  return JSON.parse(readFileSync(path.join(BUILT_DIR, `${mode}.json`), 'utf8')) as WorkflowDescription;
}

/** The workflow `cdk deploy` ships with default props and this completion mode, as built (checked by its test). */
export function builtWorkflow(mode: CompletionMode): LocalWorkflow {
  return localWorkflow(builtDescription(mode), false);
}
