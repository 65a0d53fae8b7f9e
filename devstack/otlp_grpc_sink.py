"""An OTLP/gRPC trace receiver that decodes the real protobuf and keeps the spans: where the far end
forwards traces, for the Tempo model to read. While `refusing` it answers UNAVAILABLE."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .otlp_sink import Span, decode_traces

class OtlpGrpcTraceSink:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.refusing = False
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        """host:port, as an otlp_grpc exporter's endpoint is written."""
        return f"{self.host}:{self.port}"

    def start(self) -> "OtlpGrpcTraceSink":
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(
                self._export,
                # Raw bytes in: decode_traces is the same decoder the HTTP sink uses.
                request_deserializer=None,
                response_serializer=ExportTraceServiceResponse.SerializeToString,
            )},
        )
        # The collector's exporter sends large batches (up to 8192 spans); 64 MiB bounds them.
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler], options=options)
        self.port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1).wait()
            self._server = None

    def _export(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        if self.refusing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the test made this far end refuse")
        try:
            spans = decode_traces(body)
        except Exception:  # noqa: BLE001 - any undecodable body is the sender's error
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "undecodable ExportTraceServiceRequest")
        with self._lock:
            self._spans.extend(spans)
        return ExportTraceServiceResponse()

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)
