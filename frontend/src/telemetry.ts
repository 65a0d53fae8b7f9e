// Everything OpenTelemetry in the browser: traces and logs to the same-origin /otlp/ proxy.
// Built with VITE_TELEMETRY=off, this module is replaced by telemetry.off.ts (see vite.config.ts).

// zone.js must patch Promise, fetch and addEventListener before anything else captures them;
// this import pulls it in. The build lowers async/await (build.target, vite.config.ts) because
// zone.js cannot follow native await: without that, a fetch after an await loses its click parent.
import { ZoneContextManager } from '@opentelemetry/context-zone'
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
  type LogRecordProcessor,
} from '@opentelemetry/sdk-logs'
import {
  BatchSpanProcessor,
  WebTracerProvider,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-web'
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions'
import { setWarningSink, type LogAttributes } from './log'
import type { RuntimeConfig } from './runtime-config'

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

interface ZoneGlobal {
  root: { run<T>(fn: () => T): T }
  __symbol__(name: string): string
}
const zoneGlobal = (): ZoneGlobal | undefined => (globalThis as { Zone?: ZoneGlobal }).Zone

/**
 * The user-interaction instrumentation ends a click span when every task started in its zone is
 * done. A batch processor's timer started there would hold the span open for seconds, or forever
 * once a flush cancels the timer from another zone; so processors run in the root zone.
 */
function inRootZone<T>(fn: () => T): T {
  const zone = zoneGlobal()
  return zone ? zone.root.run(fn) : fn()
}

function rootZoneSpanProcessor(inner: SpanProcessor): SpanProcessor {
  return {
    onStart: (span, parentContext) => inner.onStart(span, parentContext),
    onEnd: (span) => inRootZone(() => inner.onEnd(span)),
    forceFlush: () => inRootZone(() => inner.forceFlush()),
    shutdown: () => inRootZone(() => inner.shutdown()),
  }
}

function rootZoneLogProcessor(inner: LogRecordProcessor): LogRecordProcessor {
  return {
    onEmit: (record, ctx) => inRootZone(() => inner.onEmit(record, ctx)),
    forceFlush: () => inRootZone(() => inner.forceFlush()),
    shutdown: () => inRootZone(() => inner.shutdown()),
  }
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

  // The error listener is registered with the native addEventListener, not zone.js's patched one:
  // a zone-wrapped listener runs in the zone it was registered in (the root), so an error reported
  // synchronously inside a click handler would lose the click span's context.
  const zoneSymbol = zoneGlobal()?.__symbol__
  const target = window as unknown as Record<string, typeof window.addEventListener | undefined>
  const nativeAdd = (zoneSymbol && target[zoneSymbol('addEventListener')]) || window.addEventListener
  const nativeRemove = (zoneSymbol && target[zoneSymbol('removeEventListener')]) || window.removeEventListener
  nativeAdd.call(window, 'error', onError)
  // Rejections of zone.js promises are only delivered to zone-registered listeners, so this one
  // uses the patched API; the record then gets a fresh trace from emitInTrace.
  window.addEventListener('unhandledrejection', onRejection)

  return () => {
    nativeRemove.call(window, 'error', onError)
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
      rootZoneSpanProcessor(
        new BatchSpanProcessor(options.traceExporter ?? new OTLPTraceExporter({ url: TRACES_URL }), {
          // Flushing on hide is done below for both signals together.
          disableAutoFlushOnDocumentHide: true,
        }),
      ),
    ],
  })
  tracerProvider.register({ contextManager: new ZoneContextManager() })

  // Typed as the browser options: the package's typings describe its Node variant.
  const logBatchOptions: BatchLogRecordProcessorBrowserOptions = {
    exporter: options.logExporter ?? new OTLPLogExporter({ url: LOGS_URL }),
    disableAutoFlushOnDocumentHide: true,
  }
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [
      rootZoneLogProcessor(new BatchLogRecordProcessor(logBatchOptions)),
    ],
  })
  logs.setGlobalLoggerProvider(loggerProvider)

  const unregisterInstrumentations = registerInstrumentations({
    tracerProvider,
    instrumentations: [
      new DocumentLoadInstrumentation(),
      new UserInteractionInstrumentation({ eventNames: ['click', 'submit'] }),
      new FetchInstrumentation({
        // traceparent goes to same-origin URLs only (no propagateTraceHeaderCorsUrls); the
        // backend lives behind /api/ on this origin. The exporters' own calls are never traced.
        ignoreUrls: [/\/otlp\//],
        clearTimingResources: true,
      }),
    ],
  })

  const tracer = tracerProvider.getTracer(SCOPE, __APP_VERSION__)
  const logger = loggerProvider.getLogger(SCOPE, __APP_VERSION__)
  const removeErrorCapture = installErrorCapture(tracer, logger)
  installWarningSink(tracer, logger)

  const flush = async () => {
    await Promise.all([tracerProvider.forceFlush(), loggerProvider.forceFlush()])
  }
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
      unregisterInstrumentations()
      await Promise.all([tracerProvider.shutdown(), loggerProvider.shutdown()])
      trace.disable()
      context.disable()
      propagation.disable()
      logs.disable()
    },
  }
}
