// Fails the build when native async/await survives in dist/: ZoneContextManager cannot follow it,
// and click -> fetch span parentage would silently break (see ASYNC_LOWERING_TARGET in vite.config.ts).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAst } from 'vite'

const dir = process.argv[2] ?? 'dist/assets'
const offenders = []

function walk(node, file) {
  if (Array.isArray(node)) return node.forEach((child) => walk(child, file))
  if (!node || typeof node !== 'object') return
  const isAsyncFunction = node.async === true && /Function/.test(node.type)
  if (isAsyncFunction || node.type === 'AwaitExpression' || (node.type === 'ForOfStatement' && node.await)) {
    offenders.push(`${file}@${node.start}: ${node.type}${isAsyncFunction ? ' (async)' : ''}`)
  }
  for (const [key, value] of Object.entries(node)) {
    if (key !== 'type' && value && typeof value === 'object') walk(value, file)
  }
}

const files = readdirSync(dir).filter((name) => name.endsWith('.js'))
if (files.length === 0) throw new Error(`no .js files in ${dir}`)
for (const name of files) walk(parseAst(readFileSync(join(dir, name), 'utf8')), name)

if (offenders.length > 0) {
  console.error(`native async/await found in the bundle (${offenders.length}):\n  ${offenders.slice(0, 10).join('\n  ')}`)
  process.exit(1)
}
console.log(`check-bundle: ${files.length} file(s) in ${dir}, no native async/await`)
