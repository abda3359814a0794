import type { Context } from 'aws-lambda';
import { invocationContext, lambdaHandlers } from './shared/lambda-runtime';

/** Lambda entry point: see `startSession` in ./shared/handlers.ts. */
export const handler = (event: unknown, context?: Context) => lambdaHandlers().startSession(event, invocationContext(context));
