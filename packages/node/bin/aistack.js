#!/usr/bin/env node
// The `aistack` command. This file is committed (not built) so that npm can link the
// command on the first `npm install`, which links bins before `prepare` compiles dist/.
import { access } from 'node:fs/promises'

const entry = new URL('../dist/src/bin.js', import.meta.url)
try {
  await access(entry)
} catch {
  process.stderr.write('aistack: the packages are not built yet; run `npm install` (or `npm run build`) in the repository first\n')
  process.exit(1)
}
await import(entry.href)
