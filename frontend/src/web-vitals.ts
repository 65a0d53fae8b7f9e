// Core Web Vitals (LCP, INP, CLS) and TTFB of every page view, as OTLP log records shaped as the
// OpenTelemetry browser event `browser.web_vital` (name, value, rating, delta, id, navigation type),
// in the trace of the page's documentLoad span and carrying the page's session (a resource attribute).
// Google's web-vitals library measures them as Chrome and CrUX do, reporting LCP at the first input
// or when the page is hidden, CLS and INP when it is hidden, TTFB once the navigation is done.
import { ROOT_CONTEXT, trace, type SpanContext } from '@opentelemetry/api'
import { SeverityNumber, type Logger } from '@opentelemetry/api-logs'
import { onCLS, onINP, onLCP, onTTFB, type MetricType } from 'web-vitals'

export const WEB_VITAL_EVENT = 'browser.web_vital'

function shown(metric: MetricType): string {
  return metric.name === 'CLS' ? metric.value.toFixed(3) : `${Math.round(metric.value)} ms`
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
  const report = (metric: MetricType) => {
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
  for (const subscribe of [onLCP, onINP, onCLS, onTTFB]) subscribe(report)
}
