#!/usr/bin/env node
/** `npm start -- <input.json>`: the local runner (cli/local.ts). */
import { runAsProcess } from '../cli/process';
import { main } from '../cli/local';

runAsProcess(main, 'terminating the session');
