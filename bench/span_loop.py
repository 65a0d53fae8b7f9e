"""What one CLIENT span costs in the OpenTelemetry SDK alone, for callgrind to count: `python
span_loop.py <count>` starts that many spans beneath one SERVER span through the app's own tracer
pipeline (board.telemetry: its batch processor and exporter, our encoder), each with the six
attributes a PyMySQL span carries, and flushes them to OTEL_EXPORTER_OTLP_ENDPOINT. No
instrumentation wraps them: this is the least any instrumentation's span can cost, the floor under
benchmark 1d's client spans."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from opentelemetry.trace import SpanKind  # noqa: E402

from board.telemetry import build_resource, build_tracer_provider  # noqa: E402

ATTRIBUTES = {
    "db.system": "mysql",
    "db.name": "board",
    "db.statement": "INSERT INTO messages (user_id, body) SELECT id, %s FROM users WHERE username = %s"
                    " RETURNING id, body, created_at",
    "db.user": "board",
    "net.peer.name": "127.0.0.1",
    "net.peer.port": 3306,
}


def main() -> None:
    count = int(sys.argv[1])
    provider = build_tracer_provider(build_resource())
    tracer = provider.get_tracer("span_loop")
    with tracer.start_as_current_span("POST /api/messages", kind=SpanKind.SERVER):
        for _ in range(count):
            tracer.start_span("INSERT", kind=SpanKind.CLIENT, attributes=ATTRIBUTES).end()
    provider.shutdown()


if __name__ == "__main__":
    main()
