import { createApp } from 'vue'
import App from './App.vue'
import { loadRuntimeConfig } from './runtime-config'
import './style.css'

/** Hands an error Vue caught back to the browser as uncaught, so window 'error' listeners see it. */
function reportUncaught(err: unknown): void {
  if (typeof window.reportError === 'function') {
    window.reportError(err)
  } else {
    setTimeout(() => {
      throw err
    })
  }
}

async function bootstrap(): Promise<void> {
  // The SDK is a chunk of its own, downloaded and compiled while /config.json is fetched, so the
  // page's own script (and the `load` event) do not wait for it. '@/telemetry' resolves to
  // telemetry.off.ts when built with VITE_TELEMETRY=off.
  // A chunk that fails to load costs telemetry, never the app.
  const sdk = import('@/telemetry').catch((err: unknown) => {
    console.warn('telemetry did not load', err)
    return null
  })
  const config = await loadRuntimeConfig()
  // Before mount: the instrumentations patch fetch and addEventListener, and the user-interaction
  // one only sees listeners added after that.
  ;(await sdk)?.startTelemetry({ config })
  const app = createApp(App, { showTestError: config.showTestError })
  // Vue swallows handler errors by default; reporting them keeps them visible to telemetry and
  // runs synchronously inside the click handler, so the error record joins the click's trace.
  app.config.errorHandler = (err) => reportUncaught(err)
  app.mount('#app')
}

void bootstrap()
