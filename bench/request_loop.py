"""One workload's requests in a loop, in process, for callgrind to count: `python request_loop.py
<workload> <count>` (`seed 0` fills the board first). The app is the real one (create_app with its
telemetry, MariaDB and Redis from the environment) driven through Flask's test client, so only gunicorn's own share is left out.
Setup (signup, login, a warm cache) and the final flush of every queued span, record and metric
cost the same whatever the count: instructions for N requests minus those for M < N, divided by
N - M, is the cost of one request, its telemetry's export included. `--server-span-only` leaves out
the SQL and Redis CLIENT spans (connections and clients as they are with telemetry off), so what
the rest of a request's telemetry costs shows apart from them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from board import create_app  # noqa: E402
from board.telemetry import RedisClients, Telemetry  # noqa: E402
from common import BOARD_MESSAGES, seed_board  # noqa: E402

PASSWORD = "bench-password-1"


def fill_board(client) -> None:
    """Run once, outside callgrind, before any count."""
    client.post("/api/auth/signup", json={"username": "loop_seed", "password": PASSWORD})
    client.post("/api/auth/login", json={"username": "loop_seed", "password": PASSWORD})
    have = len(client.get(f"/api/messages?limit={BOARD_MESSAGES}").get_json()["messages"])
    seed_board(have, lambda body: client.post("/api/messages", json=body))


def requests_for(client, workload: str):
    name = "loop_" + Path("/proc/self/stat").read_text().split()[0]
    client.post("/api/auth/signup", json={"username": name, "password": PASSWORD})
    if workload == "get":
        client.get(f"/api/messages?limit={BOARD_MESSAGES}")  # fill the cache: every request after is a hit
        return lambda: client.get(f"/api/messages?limit={BOARD_MESSAGES}")
    if workload == "post":
        client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        return lambda: client.post("/api/messages", json={"body": "bench"})
    if workload == "login":
        return lambda: client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
    raise SystemExit(f"unknown workload {workload!r}")


def without_client_spans() -> None:
    Telemetry.traced_sql = lambda self, connection: connection
    Telemetry.redis_clients = lambda self, client: RedisClients(client, client)


def main() -> None:
    workload, count = sys.argv[1], int(sys.argv[2])
    if "--server-span-only" in sys.argv[3:]:
        without_client_spans()
    app = create_app()
    client = app.test_client()
    if workload == "seed":
        fill_board(client)
        app.extensions["board"]["telemetry"].shutdown()
        return
    request = requests_for(client, workload)
    for _ in range(count):
        response = request()
        assert response.status_code < 400, (response.status_code, response.get_data(as_text=True))
    app.extensions["board"]["telemetry"].shutdown()


if __name__ == "__main__":
    main()
