// Everything OpenTelemetry in the browser: traces and logs to the same-origin /otlp/ proxy.
// main.ts imports this module lazily, so its code loads beside the page instead of before it; built
// with VITE_TELEMETRY=off, it is replaced by telemetry.off.ts (see vite.config.ts).
//
// Context is the SDK's default stack context manager: it follows synchronous calls only, so a click
// span is the parent of fetches its handler makes before its first `await`; handlers that make more
// requests after one capture the context first (trace-context.ts, api.inCurrentTrace).
import { context, propagation, trace, type Context, type Tracer } from '@opentelemetry/api'
import { logs, SeverityNumber, type Logger } from '@opentelemetry/api-logs'
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { DocumentLoadInstrumentation } from '@opentelemetry/instrumentation-document-load'
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch'
import { UserInteractionInstrumentation } from '@opentelemetry/instrumentation-user-interaction'
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources'
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type BatchLogRecordProcessorBrowserOptions,
  type LogRecordExporter,
} from '@opentelemetry/sdk-logs'
import { BatchSpanProcessor, WebTracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace-web'
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions'
import { setWarningSink, type LogAttributes } from './log'
import type { RuntimeConfig } from './runtime-config'
import { setContextCapture } from './trace-context'
import { reportWebVitals } from './web-vitals'

export const TRACES_URL = '/otlp/v1/traces'
export const LOGS_URL = '/otlp/v1/logs'
const SCOPE = 'board-frontend'
// An error loop must not turn every visitor into a log flood; the nginx rate limit is the backstop.
const MAX_ERROR_RECORDS_PER_PAGE = 50

export interface TelemetryOptions {
  config: RuntimeConfig
  serviceVersion?: string
  sessionId?: string
  /** Tests pass in-memory exporters; the page uses OTLP to the same-origin proxy. */
  traceExporter?: SpanExporter
  logExporter?: LogRecordExporter
}

export interface Telemetry {
  readonly resource: Resource
  readonly tracerProvider: WebTracerProvider
  readonly loggerProvider: LoggerProvider
  /** Sends everything buffered now; the page calls it when it becomes hidden. */
  flush(): Promise<void>
  shutdown(): Promise<void>
}

function randomHex(bytes: number): string {
  // getRandomValues works on plain http too, unlike crypto.randomUUID (secure contexts only).
  const buf = crypto.getRandomValues(new Uint8Array(bytes))
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** One id per browser tab session (survives reloads), so a user's page views can be grouped. */
export function pageSessionId(storage: Storage | undefined = globalThis.sessionStorage): string {
  try {
    const existing = storage?.getItem('otel.session.id')
    if (existing && /^[0-9a-f]{32}$/.test(existing)) return existing
    const fresh = randomHex(16)
    storage?.setItem('otel.session.id', fresh)
    return fresh
  } catch {
    return randomHex(16) // storage can be disabled; a per-load id is still useful
  }
}

export function buildResource(serviceName: string, serviceVersion: string, sessionId: string): Resource {
  return resourceFromAttributes({
    [ATTR_SERVICE_NAME]: serviceName,
    [ATTR_SERVICE_VERSION]: serviceVersion,
    'session.id': sessionId,
  })
}

function pageUrl(): string {
  // Without the query string or fragment: they can carry tokens a log store should not keep.
  return `${location.origin}${location.pathname}`
}

/** Emits a record in the active trace; with no span active, a short span gives it a trace id. */
function emitInTrace(tracer: Tracer, spanName: string, emit: (ctx: Context) => void): void {
  const active = trace.getSpan(context.active())
  if (active && trace.isSpanContextValid(active.spanContext())) {
    emit(context.active())
    return
  }
  tracer.startActiveSpan(spanName, (span) => {
    try {
      emit(context.active())
    } finally {
      span.end()
    }
  })
}

function errorAttributes(error: unknown, fallbackMessage: string): LogAttributes {
  if (error instanceof Error) {
    return {
      'exception.type': error.name || 'Error',
      'exception.message': error.message,
      ...(error.stack ? { 'exception.stacktrace': error.stack } : {}),
    }
  }
  return { 'exception.type': typeof error, 'exception.message': fallbackMessage }
}

function installErrorCapture(tracer: Tracer, logger: Logger): () => void {
  let sent = 0
  const record = (source: string, error: unknown, message: string, extra: LogAttributes) => {
    if (sent >= MAX_ERROR_RECORDS_PER_PAGE) return
    sent += 1
    emitInTrace(tracer, 'browser.error', (ctx) =>
      logger.emit({
        severityNumber: SeverityNumber.ERROR,
        severityText: 'ERROR',
        eventName: 'browser.error',
        body: message,
        attributes: {
          'browser.error.source': source,
          'url.full': pageUrl(),
          ...errorAttributes(error, message),
          ...extra,
        },
        context: ctx,
      }),
    )
  }

  const onError = (event: Event) => {
    if (!(event instanceof ErrorEvent)) return // resource load failures are not script errors
    const where: LogAttributes = {}
    if (event.filename) where['code.file.path'] = event.filename
    if (event.lineno) where['code.line.number'] = event.lineno
    if (event.colno) where['code.column.number'] = event.colno
    record('error', event.error, event.message || String(event.error), where)
  }
  const onRejection = (event: PromiseRejectionEvent) => {
    const reason: unknown = event.reason
    const message = reason instanceof Error ? reason.message : String(reason)
    record('unhandledrejection', reason, `unhandled rejection: ${message}`, {})
  }

  // Registered on window, so an error reported synchronously inside a click handler (main.ts's
  // errorHandler) is recorded while the click span is still the active context.
  window.addEventListener('error', onError)
  window.addEventListener('unhandledrejection', onRejection)

  return () => {
    window.removeEventListener('error', onError)
    window.removeEventListener('unhandledrejection', onRejection)
  }
}

function installWarningSink(tracer: Tracer, logger: Logger): void {
  setWarningSink((message, attributes) =>
    emitInTrace(tracer, 'browser.warning', (ctx) =>
      logger.emit({
        severityNumber: SeverityNumber.WARN,
        severityText: 'WARN',
        body: message,
        attributes: { 'url.full': pageUrl(), ...attributes },
        context: ctx,
      }),
    ),
  )
}

export function startTelemetry(options: TelemetryOptions): Telemetry {
  const resource = buildResource(
    options.config.serviceName,
    options.serviceVersion ?? __APP_VERSION__,
    options.sessionId ?? pageSessionId(),
  )

  const tracerProvider = new WebTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(options.traceExporter ?? new OTLPTraceExporter({ url: TRACES_URL }), {
        // Flushing on hide is done below for both signals together.
        disableAutoFlushOnDocumentHide: true,
      }),
    ],
  })
  tracerProvider.register()

  // Typed as the browser options: the package's typings describe its Node variant.
  const logBatchOptions: BatchLogRecordProcessorBrowserOptions = {
    exporter: options.logExporter ?? new OTLPLogExporter({ url: LOGS_URL }),
    disableAutoFlushOnDocumentHide: true,
  }
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor(logBatchOptions)],
  })
  logs.setGlobalLoggerProvider(loggerProvider)

  const tracer = tracerProvider.getTracer(SCOPE, __APP_VERSION__)
  const logger = loggerProvider.getLogger(SCOPE, __APP_VERSION__)
  const flush = async () => {
    await Promise.all([tracerProvider.forceFlush(), loggerProvider.forceFlush()])
  }

  const unregisterInstrumentations = registerInstrumentations({
    tracerProvider,
    instrumentations: [
      new DocumentLoadInstrumentation({
        applyCustomAttributesOnSpan: {
          // The page view's span: its vitals are recorded in its trace.
          documentLoad: (span) => reportWebVitals(logger, span.spanContext(), pageUrl(), () => void flush()),
        },
      }),
      new UserInteractionInstrumentation({ eventNames: ['click', 'submit'] }),
      new FetchInstrumentation({
        // traceparent goes to same-origin URLs only (no propagateTraceHeaderCorsUrls); the
        // backend lives behind /api/ on this origin. The exporters' own calls are never traced.
        ignoreUrls: [/\/otlp\//],
        clearTimingResources: true,
      }),
    ],
  })
  setContextCapture(() => {
    const captured = context.active()
    return (fn) => context.with(captured, fn)
  })
  const removeErrorCapture = installErrorCapture(tracer, logger)
  installWarningSink(tracer, logger)

  // The last chance to send: a hidden page may be discarded without another event.
  const onVisibility = () => {
    if (document.visibilityState === 'hidden') void flush()
  }
  const onPageHide = () => void flush()
  document.addEventListener('visibilitychange', onVisibility)
  window.addEventListener('pagehide', onPageHide)

  return {
    resource,
    tracerProvider,
    loggerProvider,
    flush,
    async shutdown() {
      document.removeEventListener('visibilitychange', onVisibility)
      window.removeEventListener('pagehide', onPageHide)
      removeErrorCapture()
      setWarningSink(null)
      setContextCapture(null)
      unregisterInstrumentations()
      await Promise.all([tracerProvider.shutdown(), loggerProvider.shutdown()])
      trace.disable()
      context.disable()
      propagation.disable()
      logs.disable()
    },
  }
}
