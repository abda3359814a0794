/**
 * Validation of the execution input. Runs in the start Lambda before any session exists (and at synth for
 * scheduled inputs), so bad input fails fast with `Webrun.InvalidInput` naming the field. The input's shape,
 * limits and messages are declared once, in ./schema/workflow-input.ts.
 */
import { InvalidInput } from './errors';
import { check, formatPath, type Issue } from './schema/core';
import { jsonSchemaIssues, WorkflowInputSchema } from './schema/workflow-input';
import type { WorkflowInput } from './types';

export { siteSecretName } from './schema/workflow-input';

/** The field an input issue names: its path, or `input` for the input itself. */
function inputField(issue: Issue): string {
  return formatPath(issue.path) || 'input';
}

/** Every problem of an execution input, in the order the schema declares its fields (empty if it is valid). */
export function workflowInputIssues(input: unknown): readonly Issue[] {
  const result = check(WorkflowInputSchema, input);
  return result.ok ? [] : result.issues;
}

/** Validates an execution input and applies defaults. Throws `InvalidInput` naming the first bad field. */
export function validateWorkflowInput(input: unknown): WorkflowInput {
  const result = check(WorkflowInputSchema, input);
  if (result.ok) return result.value;
  const [first] = result.issues;
  throw new InvalidInput(inputField(first), first.message);
}

/** A structural check that `schema` is a JSON Schema object (types, required, enum and every draft-07 subschema), as `outputSchema` gets. */
export function checkJsonSchema(schema: unknown, field: string): void {
  const [first] = jsonSchemaIssues(schema);
  if (first) throw new InvalidInput(formatPath(first.path, field), first.message);
}
