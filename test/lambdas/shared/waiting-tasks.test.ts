/**
 * The waiting-task table as DynamoDB is asked (completion by webhook): what makes a resume, a task id and a rule's
 * answer happen once is the condition of each write.
 */
import { DeleteItemCommand, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { dynamoWaitingTasks, type WaitingTask } from '../../../lambdas/shared/waiting-tasks';

const dynamo = mockClient(DynamoDBClient);
const table = dynamoWaitingTasks({ client: new DynamoDBClient({ region: 'us-east-1' }), tableName: 'Waiting' });
const conditionFailed = () => Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });
const record: WaitingTask = {
  key: 'k'.repeat(40), nonce: 'n'.repeat(43), authDigest: 'd', token: 'tok', executionArn: 'arn:x', sessionId: 's-1', index: 0, sentAt: 1,
  loop: { index: 0, status: 'ready', results: [] }, expiresAt: 2,
};

beforeEach(() => dynamo.reset());

describe('dynamoWaitingTasks', () => {
  it('puts a record back by an update (the receiver may not put), with its task id and answers, unless its key was taken', async () => {
    dynamo.on(UpdateItemCommand).resolvesOnce({}).rejectsOnce(conditionFailed());
    const answered = [{ question: 'Confirm?', answeredBy: 'rule' as const }];
    await expect(table.restore({ ...record, taskId: 't-1', answered })).resolves.toBe(true);
    await expect(table.restore(record)).resolves.toBe(false);
    const [back] = dynamo.commandCalls(UpdateItemCommand).map((c) => c.args[0].input);
    expect(back).toMatchObject({ ConditionExpression: 'attribute_not_exists(nonce)', ExpressionAttributeValues: { ':t': { S: 't-1' }, ':a': { S: JSON.stringify(answered) }, ':count': { N: '1' } } });
    expect(back.UpdateExpression).toBe('SET nonce = :n, #record = :r, expiresAt = :e, taskId = :t, answered = :a, answers = :count');
    expect(JSON.parse(back.ExpressionAttributeValues![':r'].S!)).not.toHaveProperty('taskId');
  });

  it('records an answer only where no other caller recorded one first: the first answer, then the next, by count', async () => {
    dynamo.on(UpdateItemCommand).resolvesOnce({}).rejectsOnce(conditionFailed());
    const answered = [{ question: 'Confirm?', answeredBy: 'rule' as const }];
    await expect(table.setAnswered(record.key, record.nonce, answered, 0)).resolves.toBe(true);
    await expect(table.setAnswered(record.key, record.nonce, [...answered, ...answered], 1)).resolves.toBe(false);
    const [first, second] = dynamo.commandCalls(UpdateItemCommand).map((c) => c.args[0].input);
    expect(first).toMatchObject({ ConditionExpression: 'nonce = :n AND attribute_not_exists(answers)', ExpressionAttributeValues: { ':count': { N: '1' } } });
    expect(second).toMatchObject({ ConditionExpression: 'nonce = :n AND answers = :before', ExpressionAttributeValues: { ':before': { N: '1' }, ':count': { N: '2' } } });
  });

  it('retires a record by replacing its nonce, on the nonce it had: the record and its task id stay', async () => {
    dynamo.on(UpdateItemCommand).resolvesOnce({}).rejectsOnce(conditionFailed());
    await expect(table.retire(record.key, record.nonce)).resolves.toBe(true);
    await expect(table.retire(record.key, record.nonce)).resolves.toBe(false);
    const [retired] = dynamo.commandCalls(UpdateItemCommand).map((c) => c.args[0].input);
    expect(retired).toMatchObject({ UpdateExpression: 'SET nonce = :retired', ConditionExpression: 'nonce = :n', ExpressionAttributeValues: { ':n': { S: record.nonce } } });
    expect(retired.ExpressionAttributeValues![':retired'].S).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(retired.ExpressionAttributeValues![':retired'].S).not.toBe(record.nonce);
    expect(dynamo.commandCalls(DeleteItemCommand)).toHaveLength(0);
  });

  it('claims a record once: a conditional delete on its nonce', async () => {
    dynamo.on(DeleteItemCommand).resolvesOnce({ Attributes: { record: { S: JSON.stringify(record) }, taskId: { S: 't-1' } } }).rejects(conditionFailed());
    await expect(table.claim(record.key, record.nonce)).resolves.toMatchObject({ key: record.key, taskId: 't-1' });
    await expect(table.claim(record.key, record.nonce)).resolves.toBeUndefined();
    expect(dynamo.commandCalls(DeleteItemCommand)[0].args[0].input).toMatchObject({ ConditionExpression: 'nonce = :n', ReturnValues: 'ALL_OLD' });
  });
});
