import type { Context } from 'aws-lambda';
import { invocationContext, lambdaHandlers } from './shared/lambda-runtime';

/** Lambda entry point: see `pollTask` in ./shared/handlers.ts. */
export const handler = (event: unknown, context?: Context) => lambdaHandlers().pollTask(event, invocationContext(context));
