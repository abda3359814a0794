#!/usr/bin/env node
/** `npx webrun-sfn <command>`: see cli/main.ts. */
import { main } from '../cli/main';
import { runAsProcess } from '../cli/process';

runAsProcess(main, 'finishing up');
