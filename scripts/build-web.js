// Builds the web dashboard (packages/node/web) into packages/node/dist/web with esbuild: one
// ES module bundle (dashboard.js) with its stylesheet (dashboard.css) beside index.html, which
// the node's API serves at GET / and /assets/*. Part of `npm run build`, `prepare` and `test`.
import { build } from 'esbuild'
import { copyFile, mkdir, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const web = fileURLToPath(new URL('../packages/node/web/', import.meta.url))
const out = fileURLToPath(new URL('../packages/node/dist/web/', import.meta.url))

await rm(out, { recursive: true, force: true })
await mkdir(`${out}assets`, { recursive: true })
const result = await build({
  entryPoints: { dashboard: `${web}src/main.js` },
  outdir: `${out}assets`,
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: false,
  target: ['chrome120', 'firefox120', 'safari17'],
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true
})
await copyFile(`${web}index.html`, `${out}index.html`)
const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0)
console.log(`web dashboard built into packages/node/dist/web (${Math.round(bytes / 1024)} KiB)`)
