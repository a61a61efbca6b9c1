'use strict';
// tsc copies no non-TypeScript files: put the Lua scripts and console assets next to the
// compiled code in the given output folder (default dist/cjs).
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.resolve(root, process.argv[2] || 'dist/cjs');
const assetDirs = ['adapters/redis/lua', 'src/console/static'];
for (const dir of assetDirs) {
  const from = path.join(root, dir);
  if (!fs.existsSync(from)) continue;
  fs.cpSync(from, path.join(outDir, dir), { recursive: true });
}
