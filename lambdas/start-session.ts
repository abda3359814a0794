import { lambdaHandlers } from './shared/lambda-runtime';

/** Lambda entry point: see `startSession` in ./shared/handlers.ts. */
export const handler = (event: unknown) => lambdaHandlers().startSession(event);
