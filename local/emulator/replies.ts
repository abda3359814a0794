/** HTTP replies and the API's documented error body `{ success: false, error, code }`. */
import type { Json } from './util';

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export const STATUS_FOR_CODE: Readonly<Record<string, number>> = {
  INVALID_REQUEST: 400,
  INVALID_API_KEY: 401,
  API_KEY_EXPIRED: 401,
  UNAUTHORIZED: 401,
  INSUFFICIENT_BALANCE: 402,
  ACCOUNT_DEACTIVATED: 403,
  SESSION_NOT_FOUND: 404,
  SESSION_EXPIRED: 404,
  TASK_NOT_FOUND: 404,
  TASK_ALREADY_RUNNING: 409,
  SESSION_LIMIT_REACHED: 429,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL_ERROR: 500,
  INSTANCE_UNAVAILABLE: 503,
  NAVIGATION_TIMEOUT: 504,
  TASK_TIMEOUT: 504,
};

export const CODE_FOR_STATUS: Readonly<Record<number, string>> = {
  400: 'INVALID_REQUEST',
  401: 'INVALID_API_KEY',
  402: 'INSUFFICIENT_BALANCE',
  403: 'ACCOUNT_DEACTIVATED',
  404: 'SESSION_NOT_FOUND',
  409: 'TASK_ALREADY_RUNNING',
  429: 'RATE_LIMIT_EXCEEDED',
  500: 'INTERNAL_ERROR',
  502: 'INTERNAL_ERROR',
  503: 'INSTANCE_UNAVAILABLE',
  504: 'NAVIGATION_TIMEOUT',
};

const ERROR_TEXT: Readonly<Record<string, string>> = {
  INVALID_REQUEST: 'Invalid request',
  INVALID_API_KEY: 'Invalid API key',
  API_KEY_EXPIRED: 'API key expired',
  UNAUTHORIZED: 'Unauthorized',
  INSUFFICIENT_BALANCE: 'Insufficient balance',
  ACCOUNT_DEACTIVATED: 'Account deactivated',
  SESSION_NOT_FOUND: 'Session not found',
  SESSION_EXPIRED: 'Session expired',
  SESSION_LIMIT_REACHED: 'Session limit reached',
  TASK_NOT_FOUND: 'Task not found',
  TASK_ALREADY_RUNNING: 'A task is already running in this session',
  RATE_LIMIT_EXCEEDED: 'Rate limit exceeded',
  INTERNAL_ERROR: 'Internal server error',
  INSTANCE_UNAVAILABLE: 'No browser instance available, try again later',
  NAVIGATION_TIMEOUT: 'Navigation timed out',
  TASK_TIMEOUT: 'Task timed out',
};

export function ok(body: Json): Reply {
  return { status: 200, body };
}

export function apiError(status: number, code: string, error?: string, headers?: Record<string, string>): Reply {
  return { status, body: { success: false, error: error ?? ERROR_TEXT[code] ?? 'Error', code }, ...(headers ? { headers } : {}) };
}

export function badRequest(error: string): Reply {
  return apiError(400, 'INVALID_REQUEST', error);
}
