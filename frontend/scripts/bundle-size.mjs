// Builds the app with and without telemetry (VITE_TELEMETRY=off) and prints the gzip size of the
// JavaScript each ships, as one JSON line for the benchmarks: all of it, and what the first render
// waits for (the entry chunk and its static imports; lazily imported chunks load beside it).
//
// --by-package: one build with a chunk per npm package instead, and a table of each package's gzip
// size, to see where telemetry's bytes come from (chunking changes gzip a little: a guide, not a total).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'vite'

const gzipBytes = (bytes) => gzipSync(bytes, { level: 9 }).length

/** The package an imported module belongs to, or 'app' for our own source. */
function packageOf(id) {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(id)
  return match ? match[1].replace('/', '__') : 'app'
}

async function buildInto(telemetry, extra = {}) {
  const outDir = mkdtempSync(join(tmpdir(), `board-frontend-${telemetry}-`))
  process.env.VITE_TELEMETRY = telemetry
  await build({ logLevel: 'silent', build: { outDir, emptyOutDir: true, manifest: true, ...extra } })
  return outDir
}

/** Files the entry needs before it runs: itself and its static imports, transitively. */
function initialFiles(manifest) {
  const seen = new Set()
  const visit = (key) => {
    const chunk = manifest[key]
    if (!chunk || seen.has(chunk.file)) return
    seen.add(chunk.file)
    for (const imported of chunk.imports ?? []) visit(imported)
  }
  for (const [key, chunk] of Object.entries(manifest)) if (chunk.isEntry) visit(key)
  return seen
}

async function measure(telemetry) {
  const outDir = await buildInto(telemetry)
  try {
    const manifest = JSON.parse(readFileSync(join(outDir, '.vite', 'manifest.json'), 'utf8'))
    const initial = initialFiles(manifest)
    const js = readdirSync(join(outDir, 'assets')).filter((name) => name.endsWith('.js'))
    const totals = { files: js.length, raw_bytes: 0, gzip_bytes: 0, initial_gzip_bytes: 0 }
    for (const name of js) {
      const bytes = readFileSync(join(outDir, 'assets', name))
      const gzip = gzipBytes(bytes)
      totals.raw_bytes += bytes.length
      totals.gzip_bytes += gzip
      if (initial.has(`assets/${name}`)) totals.initial_gzip_bytes += gzip
    }
    return totals
  } finally {
    rmSync(outDir, { recursive: true, force: true })
  }
}

async function byPackage() {
  const outDir = await buildInto('on', {
    rollupOptions: { output: { manualChunks: (id) => packageOf(id), chunkFileNames: 'assets/[name].js' } },
  })
  try {
    const rows = readdirSync(join(outDir, 'assets'))
      .filter((name) => name.endsWith('.js'))
      .map((name) => {
        const bytes = readFileSync(join(outDir, 'assets', name))
        return { chunk: name.replace(/\.js$/, '').replace('__', '/'), raw: bytes.length, gzip: gzipBytes(bytes) }
      })
      .sort((a, b) => b.gzip - a.gzip)
    for (const row of rows) console.log(`${String(row.gzip).padStart(7)} B gzip ${String(row.raw).padStart(8)} B raw  ${row.chunk}`)
    console.log(`${String(rows.reduce((sum, r) => sum + r.gzip, 0)).padStart(7)} B gzip in all (per-chunk gzip)`)
  } finally {
    rmSync(outDir, { recursive: true, force: true })
  }
}

if (process.argv.includes('--by-package')) {
  await byPackage()
} else {
  const on = await measure('on')
  const off = await measure('off')
  console.log(
    JSON.stringify({
      telemetry_on: on,
      telemetry_off: off,
      telemetry_gzip_cost_bytes: on.gzip_bytes - off.gzip_bytes,
      telemetry_initial_gzip_cost_bytes: on.initial_gzip_bytes - off.initial_gzip_bytes,
    }),
  )
}
