/// <reference types="vitest/config" />
import { readFileSync } from 'node:fs'
import { fileURLToPath, URL } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig, loadEnv, type Plugin } from 'vite'

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string }
const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url))

/** Dev stand-in for the /config.json that nginx renders from env vars in the image. */
function runtimeConfigDevServer(serviceName: string): Plugin {
  return {
    name: 'runtime-config-dev-server',
    configureServer(server) {
      server.middlewares.use('/config.json', (_req, res) => {
        res.setHeader('Content-Type', 'application/json')
        res.setHeader('Cache-Control', 'no-store')
        res.end(JSON.stringify({ serviceName }))
      })
    },
  }
}

export default defineConfig(({ mode }) => {
  const env = { ...loadEnv(mode, process.cwd(), ''), ...process.env }
  // VITE_TELEMETRY=off builds the app without OpenTelemetry, for the size/speed benchmarks.
  const telemetryOff = (env.VITE_TELEMETRY ?? '').toLowerCase() === 'off'
  const backendUrl = env.BACKEND_URL || 'http://127.0.0.1:8000'
  const otlpUrl = env.OTLP_URL || 'http://127.0.0.1:4318'

  return {
    plugins: [vue(), runtimeConfigDevServer(env.FRONTEND_SERVICE_NAME || 'frontend')],
    define: {
      __APP_VERSION__: JSON.stringify(pkg.version),
    },
    resolve: {
      ...(mode === 'test' ? { mainFields: ['browser', 'module', 'main'], conditions: ['browser', 'module'] } : {}),
      alias: [
        ...(telemetryOff ? [{ find: /^@\/telemetry$/, replacement: src('telemetry.off.ts') }] : []),
        { find: /^@\//, replacement: src('') },
      ],
    },
    build: {
      sourcemap: false,
    },
    server: {
      proxy: {
        '/api': { target: backendUrl, changeOrigin: false },
        // Same rules as nginx: the collector gets /v1/..., and never the app's session cookie.
        '/otlp': {
          target: otlpUrl,
          rewrite: (path) => path.replace(/^\/otlp/, ''),
          configure: (proxy) => {
            proxy.on('proxyReq', (proxyReq) => proxyReq.removeHeader('cookie'))
          },
        },
      },
    },
    test: {
      environment: 'happy-dom',
      include: ['src/**/*.test.ts'],
      restoreMocks: true,
      // Transforming OpenTelemetry for the first import takes seconds on a busy 2-core machine.
      hookTimeout: 30_000,
      testTimeout: 15_000,
      // Let Vite resolve OpenTelemetry as the browser build gets it (package.json "browser"
      // field, ESM): left to Node, the exporters would be their http.request variants.
      server: { deps: { inline: [/@opentelemetry\//, /web-vitals/] } },
    },
  }
})
