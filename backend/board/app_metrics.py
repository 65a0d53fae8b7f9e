"""The board's own counters: what the dashboards show beside the HTTP RED metrics."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from opentelemetry import metrics
from opentelemetry.metrics import Counter

from . import __version__


@dataclass(frozen=True)
class BoardMetrics:
    messages_posted: Counter
    logins: Counter

    @classmethod
    def create(cls) -> "BoardMetrics":
        meter = metrics.get_meter("board", __version__)
        return cls(
            messages_posted=meter.create_counter("board.messages.posted", unit="{message}",
                                                 description="Messages stored"),
            logins=meter.create_counter("board.logins", unit="{login}",
                                        description="Login attempts by outcome (succeeded, failed, rate_limited)"),
        )


def current() -> BoardMetrics:
    return current_app.extensions["board"]["metrics"]
