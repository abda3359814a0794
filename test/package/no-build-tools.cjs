// Preloaded into the consumer app's synth (`node --require`): a CDK app that installed webrun-sfn has no tsx,
// esbuild or typescript, so this makes them unloadable (require throws, as it would there) and records every
// attempt to load or spawn them, and every such module found in require.cache, in $GUARD_REPORT at exit.
'use strict';
const childProcess = require('node:child_process');
const fs = require('node:fs');
const Module = require('node:module');

const FORBIDDEN_REQUEST = /^(tsx|esbuild|@esbuild\/[^/]+|typescript)(\/|$)/;
const FORBIDDEN_FILE = /[\\/]node_modules[\\/](tsx|esbuild|@esbuild|typescript)[\\/]/;
const FORBIDDEN_COMMAND = /\b(tsx|esbuild|tsc)\b/;
const attempts = [];

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (FORBIDDEN_REQUEST.test(request)) {
    attempts.push(`require ${request}`);
    const err = new Error(`Cannot find module '${request}' (a consumer's CDK app does not have it)`);
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolveFilename.call(this, request, ...rest);
};

for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync']) {
  const original = childProcess[name];
  childProcess[name] = function (command, ...rest) {
    const line = [command, ...(Array.isArray(rest[0]) ? rest[0] : [])].join(' ');
    if (FORBIDDEN_COMMAND.test(line)) attempts.push(`${name} ${line}`);
    return original.call(this, command, ...rest);
  };
}

process.on('exit', () => {
  const loaded = Object.keys(require.cache).filter((file) => FORBIDDEN_FILE.test(file));
  fs.writeFileSync(process.env.GUARD_REPORT, JSON.stringify({ attempts, loaded }));
});
