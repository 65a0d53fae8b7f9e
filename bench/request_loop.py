"""`python -m bench.request_loop <workload> <count>` (backend/ on PYTHONPATH): one workload's requests
through the real app in process, Flask's test client in gunicorn's place, for callgrind to count
(request_overhead.py); `seed 0` fills the board first."""

from __future__ import annotations

import os
import sys

from board import create_app, telemetry

from bench.common import BOARD_MESSAGES, seed_board

PASSWORD = "bench-password-1"


def requests_for(client, workload: str):
    name = f"loop_{os.getpid()}"
    client.post("/api/auth/signup", json={"username": name, "password": PASSWORD})
    if workload == "seed":
        client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        have = len(client.get(f"/api/messages?limit={BOARD_MESSAGES}").get_json()["messages"])
        seed_board(have, lambda body: client.post("/api/messages", json=body))
        return None
    if workload == "get":
        client.get(f"/api/messages?limit={BOARD_MESSAGES}")  # fill the cache: every request after is a hit
        return lambda: client.get(f"/api/messages?limit={BOARD_MESSAGES}")
    if workload == "post":
        client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        return lambda: client.post("/api/messages", json={"body": "bench"})
    if workload == "login":
        return lambda: client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
    raise SystemExit(f"unknown workload {workload!r}")


def main() -> None:
    workload, count = sys.argv[1], int(sys.argv[2])
    request = requests_for(create_app().test_client(), workload)
    for _ in range(count if request else 0):
        response = request()
        assert response.status_code < 400, (response.status_code, response.get_data(as_text=True))
    telemetry.shutdown()


if __name__ == "__main__":
    main()
