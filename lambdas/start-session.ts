import { lambdaHandler } from './shared/lambda-runtime';

/** Lambda entry point: see `startSession` in ./shared/handlers.ts. */
export const handler = lambdaHandler('startSession');
