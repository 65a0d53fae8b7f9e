// Core Web Vitals (LCP, INP, CLS) and TTFB of every page view, as OTLP log records shaped as the
// OpenTelemetry browser event `browser.web_vital` (name, value, rating, delta, id, navigation type),
// in the trace of the page's documentLoad span and carrying the page's session (a resource attribute).
// Google's web-vitals library measures them as Chrome and CrUX do, reporting LCP at the first input
// or when the page is hidden, CLS and INP when it is hidden, TTFB once the navigation is done.
// INP is the exception to taking its reports as they come (see inpWhenHidden).
import { ROOT_CONTEXT, trace, type SpanContext } from '@opentelemetry/api'
import { SeverityNumber, type Logger } from '@opentelemetry/api-logs'
import { onCLS, onINP, onLCP, onTTFB, type MetricType } from 'web-vitals'

export const WEB_VITAL_EVENT = 'browser.web_vital'

function shown(metric: MetricType): string {
  return metric.name === 'CLS' ? metric.value.toFixed(3) : `${Math.round(metric.value)} ms`
}

type Report = (metric: MetricType) => void

/**
 * The callback for onINP with reportAllChanges: reports INP when the page is hidden, and again only
 * if it grew, as onINP does by default, but without its gap. web-vitals 6 reads event-timing entries
 * in an idle callback and makes its hidden-page report before that callback has run, so an
 * interaction timed just before or after the page was hidden (a click that opens a new tab)
 * went unreported (in Chromium, 5 of 6 pages hidden right after a click; test_frontend_e2e.py).
 * Every change reaches this callback; the latest is kept until the page is hidden.
 */
function inpWhenHidden(report: Report): Report {
  let latest: MetricType | undefined
  let sent: { id: string; value: number } | undefined
  const send = () => {
    if (latest === undefined) return
    const metric = latest
    latest = undefined
    // The delta from the last INP sent for this metric id, as onINP's own reports carry it.
    const delta = sent?.id === metric.id ? metric.value - sent.value : metric.value
    sent = { id: metric.id, value: metric.value }
    report({ ...metric, delta } as MetricType)
  }
  // A document listener runs after web-vitals' window capture listeners, which process what the
  // idle callback had not yet.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') send()
  })
  return (metric) => {
    latest = { ...metric } as MetricType // web-vitals goes on changing the object it passes
    if (document.visibilityState === 'hidden') send()
  }
}

/**
 * Starts reporting this page's vitals. `pageUrl` names the page without query or fragment;
 * `onHiddenReport` runs after a record emitted while the page is hidden, when it may be the last.
 */
export function reportWebVitals(
  logger: Logger,
  page: SpanContext,
  pageUrl: string,
  onHiddenReport: () => void,
): void {
  const pageContext = trace.setSpanContext(ROOT_CONTEXT, page)
  const report: Report = (metric) => {
    logger.emit({
      severityNumber: SeverityNumber.INFO,
      severityText: 'INFO',
      eventName: WEB_VITAL_EVENT,
      body: `${metric.name} ${shown(metric)} (${metric.rating})`,
      attributes: {
        'browser.web_vital.name': metric.name,
        'browser.web_vital.value': metric.value,
        'browser.web_vital.rating': metric.rating,
        'browser.web_vital.delta': metric.delta,
        'browser.web_vital.id': metric.id,
        'browser.web_vital.navigation_type': metric.navigationType,
        'url.full': pageUrl,
      },
      context: pageContext,
    })
    if (document.visibilityState === 'hidden') onHiddenReport()
  }
  for (const subscribe of [onLCP, onCLS, onTTFB]) subscribe(report)
  onINP(inpWhenHidden(report), { reportAllChanges: true })
}
