// Fails the build when OpenTelemetry is in the JavaScript the page loads before it runs (index.html's
// module script and modulepreloads): the SDK must stay a lazily imported chunk (main.ts), or every
// visitor waits for it before the `load` event. A build without telemetry has no such chunk at all.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dist = process.argv[2] ?? 'dist'
const MARKER = 'opentelemetry' // in the API's global registry key and the SDK's own names

const html = readFileSync(join(dist, 'index.html'), 'utf8')
const initial = [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1])
if (initial.length === 0) throw new Error(`no script in ${dist}/index.html`)
const all = readdirSync(join(dist, 'assets')).filter((name) => name.endsWith('.js')).map((name) => `assets/${name}`)
const withTelemetry = all.filter((file) => readFileSync(join(dist, file), 'utf8').includes(MARKER))

const eager = initial.filter((file) => withTelemetry.includes(file))
if (eager.length > 0) {
  console.error(`OpenTelemetry is in what index.html loads up front: ${eager.join(', ')}`)
  process.exit(1)
}
const telemetryBuilt = withTelemetry.length > 0
console.log(
  `check-bundle: ${initial.length} file(s) loaded up front, none with OpenTelemetry; ` +
    (telemetryBuilt ? `telemetry in ${withTelemetry.join(', ')}, loaded lazily` : 'no telemetry in this build'),
)
