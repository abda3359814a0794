import { lambdaHandler } from './shared/lambda-runtime';

/** Lambda entry point: see `askPerson` in ./shared/handlers.ts. */
export const handler = lambdaHandler('askPerson');
