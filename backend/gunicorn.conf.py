"""gunicorn settings for the backend; the container and the tests start it with exactly this file.

Never preload: OpenTelemetry's batch processors start threads that must be created in each worker.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from board.config import ConfigError, Settings  # noqa: E402

try:
    _settings = Settings.from_env()
except ConfigError as exc:
    # Fail at start-up, naming the setting, instead of booting workers that crash one by one.
    print(f"configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{_settings.port}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
preload_app = False
timeout = 30
graceful_timeout = 20
keepalive = 5
# Access lines would duplicate the SERVER spans; our JSON logs go to stdout.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The runtime control socket would need a writable $HOME (read-only root filesystem in the pod)
# and collides between several instances on one machine; nothing here uses gunicornc.
control_socket_disable = True
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None


def worker_exit(server, worker):
    # Flush the spans, log records and metrics still queued before the worker goes away.
    from board import telemetry

    telemetry.shutdown()
