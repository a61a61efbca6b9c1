#!/usr/bin/env node
'use strict';
require('../dist/cjs/src/cli.js')
  .main(process.argv.slice(2))
  .catch((err) => {
    process.stderr.write(`cloud-defer: ${err && err.message ? err.message : err}\n`);
    process.exit(1);
  });
