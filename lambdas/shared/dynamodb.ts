/** What the DynamoDB-backed stores (./session-records.ts, ./waiting-tasks.ts) share. */

/**
 * The DynamoDB commands, loaded on first use: a local run keeps its records in memory and never loads the SDK
 * client (about 0.1 s of every `npm start`).
 */
export const dynamodbCommands = () => import('@aws-sdk/client-dynamodb');

/** Whether a write was refused by its ConditionExpression (by the error's name, as every copy of the SDK sets it). */
function isConditionFailed(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}

/**
 * Runs a conditional write (Put, Update or Delete with a ConditionExpression): `written` is false when the condition
 * refused it, and nothing was written; any other failure is thrown.
 */
export async function conditionalWrite<T>(write: () => Promise<T>): Promise<{ written: true; output: T } | { written: false }> {
  try {
    return { written: true, output: await write() };
  } catch (err) {
    if (isConditionFailed(err)) return { written: false };
    throw err;
  }
}
