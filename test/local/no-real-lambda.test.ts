/** A local run never calls AWS: a Task state the runner has no handler for is refused, not sent to AWS Lambda. */
import { StateMachine } from 'aws-local-stepfunctions';
import { expect, it } from 'vitest';
import { REFUSED_LAMBDA_MESSAGE } from '../../local/no-real-lambda';

it('a Task state without a local handler fails the execution with the refusal, instead of invoking the Lambda its ARN names', async () => {
  const definition = { StartAt: 'Deployed', States: { Deployed: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:123456789012:function:deployed', End: true } } };
  const machine = new StateMachine(definition as never, { validationOptions: { noValidate: true } });
  await expect(machine.run({}).result).rejects.toThrow(REFUSED_LAMBDA_MESSAGE);
});
