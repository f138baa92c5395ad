#!/usr/bin/env node
// The `paralon` command: runs the compiled CLI (dist/, built by `npm install` through `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(cli)) {
  console.error('paralon: dist/cli.js is missing — run `npm install` (or `npm run build`) in the package directory.');
  process.exit(1);
}
await import(pathToFileURL(cli).href);
