#!/usr/bin/env node
// The `webrun-sfn` command (package.json "bin"): loads tsx (as `node --import tsx` does: TypeScript for require
// and import alike), then runs bin/cli.ts. No build step.
'use strict';
import('tsx').then(() => require('./cli.ts'));
