import { lambdaHandler } from './shared/lambda-runtime';

/** Lambda entry point: see `terminateSession` in ./shared/handlers.ts. */
export const handler = lambdaHandler('terminateSession');
