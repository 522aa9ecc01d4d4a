#!/usr/bin/env node
'use strict';
// Compiled by `npm install` (the `prepare` script) or `npm run build`.
require('../dist/cli/main.js')
  .main(process.argv)
  .catch((err) => {
    process.stderr.write(`garden-deploy: ${err && err.message ? err.message : err}\n`);
    process.exitCode = process.exitCode || 1;
  });
