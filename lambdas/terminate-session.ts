import { lambdaHandlers } from './shared/lambda-runtime';

/** Lambda entry point: see `terminateSession` in ./shared/handlers.ts. */
export const handler = (event: unknown) => lambdaHandlers().terminateSession(event);
