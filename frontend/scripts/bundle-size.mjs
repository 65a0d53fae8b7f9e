// Builds the app with and without telemetry (VITE_TELEMETRY=off) and prints the gzip size of the
// JavaScript each ships, as one JSON line for the benchmarks.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'vite'

async function measure(telemetry) {
  const outDir = mkdtempSync(join(tmpdir(), `board-frontend-${telemetry}-`))
  process.env.VITE_TELEMETRY = telemetry
  try {
    await build({ logLevel: 'silent', build: { outDir, emptyOutDir: true } })
    const assets = join(outDir, 'assets')
    const js = readdirSync(assets).filter((name) => name.endsWith('.js'))
    let raw = 0
    let gzip = 0
    for (const name of js) {
      const bytes = readFileSync(join(assets, name))
      raw += bytes.length
      gzip += gzipSync(bytes, { level: 9 }).length
    }
    return { files: js.length, raw_bytes: raw, gzip_bytes: gzip }
  } finally {
    rmSync(outDir, { recursive: true, force: true })
  }
}

const on = await measure('on')
const off = await measure('off')
console.log(JSON.stringify({ telemetry_on: on, telemetry_off: off, telemetry_gzip_cost_bytes: on.gzip_bytes - off.gzip_bytes }))
