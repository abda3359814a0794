/**
 * Resuming an execution that waits on a task token: SendTaskSuccess with the new loop, or SendTaskFailure with the
 * error the task ended with. Deployed: Step Functions; locally: the runner's registry of waiting states.
 */
import { SendTaskFailureCommand, SendTaskSuccessCommand, TaskTimedOut, type SFNClient } from '@aws-sdk/client-sfn';

export interface TaskTokens {
  /** False when the token is no longer waiting (timed out, or the execution ended). */
  succeed(token: string, output: unknown): Promise<boolean>;
  fail(token: string, error: string, cause: string): Promise<boolean>;
}

const gone = (err: unknown) => {
  const name = (err as { name?: string })?.name;
  return err instanceof TaskTimedOut || name === 'TaskTimedOut' || name === 'TaskDoesNotExist' || name === 'InvalidToken';
};

export function sfnTaskTokens(client: Pick<SFNClient, 'send'>): TaskTokens {
  const send = async (command: SendTaskSuccessCommand | SendTaskFailureCommand) => {
    try {
      await client.send(command as never);
      return true;
    } catch (err) {
      if (gone(err)) return false;
      throw err;
    }
  };
  return {
    succeed: (token, output) => send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) })),
    fail: (token, error, cause) => send(new SendTaskFailureCommand({ taskToken: token, error: error.slice(0, 256), cause: cause.slice(0, 32_768) })),
  };
}
