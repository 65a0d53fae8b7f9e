import { createApp } from 'vue'
import App from './App.vue'
import { loadRuntimeConfig } from './runtime-config'
// '@/telemetry' resolves to telemetry.off.ts when built with VITE_TELEMETRY=off.
import { startTelemetry } from '@/telemetry'
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
  const config = await loadRuntimeConfig()
  // Before mount: instrumentations must patch fetch and event listeners before the app uses them.
  startTelemetry({ config })
  const app = createApp(App, { showTestError: config.showTestError })
  // Vue swallows handler errors by default; reporting them keeps them visible to telemetry and
  // runs synchronously inside the click handler, so the error record joins the click's trace.
  app.config.errorHandler = (err) => reportUncaught(err)
  app.mount('#app')
}

void bootstrap()
