"""Our Redis CLIENT spans (backend/board/redis_spans.py) against the maintained instrumentation they
replace (opentelemetry-instrumentation-redis, with OTEL_SEMCONV_STABILITY_OPT_IN=http as the
deployment sets it): the same commands against a real Redis, one client of each on the same
connection pool, give the same spans: name, kind, parent, attributes, status and exception event.
That the spans reach the collector beneath the request's SERVER span is asserted by
test_backend_telemetry.py and test_pipeline_e2e.py."""

from __future__ import annotations

import redis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from board.redis_spans import TracedRedis


def same_commands(client: redis.Redis, other: redis.Redis, tracer) -> None:
    with tracer.start_as_current_span("request"):
        client.set("spans:text", "v", ex=60)
        client.mget("spans:text", "spans:missing")
        client.incr("spans:count")
        try:
            client.incr("spans:text")  # not an integer: the server's error
        except redis.ResponseError:
            pass
        client.execute_command("PING")
        pipe = client.pipeline()
        pipe.incr("spans:count")
        pipe.expire("spans:count", 60, nx=True)
        pipe.execute()
        client.pipeline(transaction=False).get("spans:text").execute()
        client.pipeline().execute()
        watched = client.pipeline()
        watched.watch("spans:count")
        watched.get("spans:count")  # after WATCH, before MULTI: sent at once
        watched.multi()
        watched.incr("spans:count")
        other.incr("spans:count")  # someone else's write: EXEC answers with a WatchError
        try:
            watched.execute()
        except redis.WatchError:
            pass
        client.mget([f"spans:{i}" for i in range(600)])  # a statement over the instrumentation's cut


def recorded(make_client, pool: redis.ConnectionPool) -> list[dict]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    same_commands(make_client(provider), redis.Redis(connection_pool=pool), provider.get_tracer("test"))
    spans = memory.get_finished_spans()
    request = next(s for s in spans if s.name == "request")
    return [{
        "schema": s.instrumentation_scope.schema_url,
        "name": s.name,
        "kind": s.kind,
        "child of the request": s.parent.span_id == request.context.span_id,
        "attributes": dict(s.attributes),
        "status": (s.status.status_code, s.status.description),
        "events": [(e.name, {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}) for e in s.events],
    } for s in spans if s is not request]


def test_our_redis_spans_are_the_maintained_instrumentations(redis_srv, monkeypatch):
    # The instrumentation reads this once per process, at its first use; no test before this one
    # instruments anything in the pytest process (a mode read earlier would show here as a diff).
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    pool = redis.ConnectionPool.from_url(redis_srv.url, decode_responses=True)

    def maintained(provider: TracerProvider) -> redis.Redis:
        client = redis.Redis(connection_pool=pool)
        RedisInstrumentor.instrument_client(client, tracer_provider=provider)
        return client

    ours = recorded(lambda provider: TracedRedis(pool, provider), pool)
    theirs = recorded(maintained, pool)
    assert [s["name"] for s in ours] == ["SET", "MGET", "INCRBY", "INCRBY", "PING", "INCRBY EXPIRE", "GET", "redis",
                                         "WATCH", "GET", "INCRBY", "MGET"]
    for our, their in zip(ours, theirs, strict=True):
        assert our == their
    failed = ours[3]
    assert failed["status"][1].startswith("ResponseError: ") and failed["events"][0][0] == "exception"
    assert ours[0]["attributes"]["db.statement"] == "SET ? ? ? ?"  # values never reach a span
    assert ours[-1]["attributes"]["db.statement"].endswith("...")
