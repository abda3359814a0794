import { lambdaHandlers } from './shared/lambda-runtime';

/** Lambda entry point: see `pollTask` in ./shared/handlers.ts. */
export const handler = (event: unknown) => lambdaHandlers().pollTask(event);
