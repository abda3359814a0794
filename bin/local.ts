#!/usr/bin/env node
/** `npm start -- <input.json>`: the local runner (local/cli.ts). */
import { runAsProcess } from '../cli/process';
import { main } from '../local/cli';

runAsProcess(main, 'terminating the session');
