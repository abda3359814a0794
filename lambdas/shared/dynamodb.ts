/** What the DynamoDB-backed stores (./session-records.ts, ./waiting-tasks.ts) share. */

/**
 * The DynamoDB commands, loaded on first use: a local run keeps its records in memory and never loads the SDK
 * client (about 0.1 s of every `npm start`).
 */
export const dynamodbCommands = () => import('@aws-sdk/client-dynamodb');

/** Whether a write was refused by its ConditionExpression (by the error's name, as every copy of the SDK sets it). */
export function isConditionFailed(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
