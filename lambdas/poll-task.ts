import { lambdaHandler } from './shared/lambda-runtime';

/** Lambda entry point: see `pollTask` in ./shared/handlers.ts. */
export const handler = lambdaHandler('pollTask');
