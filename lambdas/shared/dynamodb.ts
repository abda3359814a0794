/** What the DynamoDB-backed stores (./session-records.ts, ./waiting-tasks.ts) share. */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/** Whether a write was refused by its ConditionExpression (also when the error crossed a copy of the SDK). */
export function isConditionFailed(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
