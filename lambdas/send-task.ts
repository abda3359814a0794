import { lambdaHandler } from './shared/lambda-runtime';

/** Lambda entry point: see `sendTask` in ./shared/handlers.ts. */
export const handler = lambdaHandler('sendTask');
