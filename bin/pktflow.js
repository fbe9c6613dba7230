#!/usr/bin/env node
'use strict';
// pktflow is TypeScript end to end, pipelines included: tsx compiles on load (cached).
require('tsx/cjs');
require('../src/cli/main.ts')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
