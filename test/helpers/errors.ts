/** Error helpers shared by the tests. */

/** The error a promise rejects with; fails the test if it resolves. */
export async function caught<E extends Error = Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error('expected a rejection');
}

/** An error as the AWS SDK throws it: told apart by its `name` (`ResourceNotFoundException`, ...). */
export function awsError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}
