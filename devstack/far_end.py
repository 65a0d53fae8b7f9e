"""The far end of the pipeline, where Tempo and Loki (AGPL, never run here) stand in the cluster: the
project's own collector on Tempo's protocol and Loki's path, feeding the Tempo and Loki models; it
can refuse, vanish and come back (tests/README.md, "What is modelled, and why")."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .collector import Collector, metric_sum
from .loki_model import LokiModel
from .otlp_grpc_sink import OtlpGrpcTraceSink
from .otlp_sink import OtlpSink
from .tempo_model import TempoModel

CONFIG = Path(__file__).with_name("far_end.yaml")
TEMPO_OTLP_GRPC_PORT = 4317
LOKI_HTTP_PORT = 3100
COUNT_ONLY_CONFIG = Path(__file__).with_name("far_end_count_only.yaml")
# Time for requests already inside the far end to be answered before it stops (its sinks are local).
IN_FLIGHT_S = 1.0


@dataclass(frozen=True)
class Accepted:
    spans: int
    log_records: int


class FarEnd:
    def __init__(self, base_dir: Path, name: str = "far-end", keep: bool = True, address: str | None = None):
        """keep=False: count only (benchmark 4), so the far end costs less than the gateway it measures.
        address: receive there on Tempo's and Loki's own ports (4317, 3100), as the test cluster's
        Services for them point (tests/cluster/overlay); else on free loopback ports."""
        self.trace_sink = OtlpGrpcTraceSink().start()
        self.log_sink = OtlpSink().start()
        self.collector = Collector(
            name, CONFIG, base_dir, kube=None,
            env={"TRACE_SINK_ENDPOINT": self.trace_sink.endpoint, "LOG_SINK_ENDPOINT": self.log_sink.endpoint},
            extra_configs=() if keep else (COUNT_ONLY_CONFIG,),
            listen=(address, TEMPO_OTLP_GRPC_PORT, LOKI_HTTP_PORT) if address else None)
        self.tempo = TempoModel(self.trace_sink.spans)
        self.loki = LokiModel(self.log_sink.logs)
        # Counters of earlier runs of the process: its own restart from zero when it comes back.
        self._accepted_before = Accepted(0, 0)

    @property
    def tempo_otlp_grpc(self) -> str:
        """What the gateway's otlp_grpc/tempo exporter is given (Tempo's :4317)."""
        return self.collector.otlp_grpc

    @property
    def loki_otlp_endpoint(self) -> str:
        """What the gateway's otlp_http/loki exporter is given (Loki's :3100/otlp); it appends /v1/logs."""
        return f"{self.collector.otlp_http}/otlp"

    @property
    def process(self):
        return self.collector.process

    def start(self) -> "FarEnd":
        self.collector.start()
        return self

    def stop(self) -> None:
        """Vanish: the ports close, senders get connection refused; what was kept stays. Its counters
        die with the process, so first it refuses for a moment (as a store shutting down does), and
        the reading taken then is final: nothing is accepted between that reading and the exit."""
        if self.collector.process.alive():
            self.refuse()
            time.sleep(IN_FLIGHT_S)
            self._accepted_before = self.accepted()
        self.collector.stop()
        self.refuse(False)

    def refuse(self, refusing: bool = True) -> None:
        """Answer every push with a retryable error (UNAVAILABLE / 503), keeping nothing (keep=True only)."""
        self.trace_sink.refusing = refusing
        self.log_sink.refusing = refusing

    def accepted(self) -> Accepted:
        """Spans and log records this far end accepted over all its runs, from its own metrics."""
        if not self.collector.process.alive():
            return self._accepted_before
        metrics = self.collector.metrics()
        return Accepted(
            self._accepted_before.spans + metric_sum(metrics, "otelcol_receiver_accepted_spans"),
            self._accepted_before.log_records + metric_sum(metrics, "otelcol_receiver_accepted_log_records"),
        )

    def close(self) -> None:
        self.stop()
        self.trace_sink.stop()
        self.log_sink.stop()
