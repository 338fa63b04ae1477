#!/usr/bin/env node
// The `cairn` command. The TypeScript sources are compiled to dist/ by `npm install` (prepare) and
// `npm start` (prestart); run `npm run build` after editing src/.
import { main } from '../dist/cli/main.js';

main(process.argv).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
