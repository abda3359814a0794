#!/usr/bin/env node
// The `webrun-sfn` command (package.json "bin"): loads tsx's CommonJS hook (as `node --require tsx/cjs` does), then
// runs bin/cli.ts. No build step. It runs from a clone of this repo only: the installed
// package ships the construct, not the command's TypeScript sources (npm ships every "bin" file regardless).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

if (!fs.existsSync(path.join(__dirname, 'cli.ts'))) {
  process.stderr.write(
    'webrun-sfn: the installed package holds the CDK construct only; the webrun-sfn command runs from a clone of ' +
      'the webrun-sfn repository (npm ci, then npx webrun-sfn there).\n',
  );
  process.exit(2);
}
require('tsx/cjs');
require('./cli.ts');
