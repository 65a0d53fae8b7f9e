"""Schemathesis hooks (SCHEMATHESIS_HOOKS=schemathesis_auth): every generated request carries a real
session, so authenticated operations are exercised past the 401, and each session id goes to
$FUZZ_SESSIONS_FILE for the suite's secret scan."""

from __future__ import annotations

import os
import uuid

import requests
import schemathesis

# The suite's password (conftest.TEST_PASSWORD), which the final secret scan looks for.
PASSWORD = "correct-horse-battery-staple"


@schemathesis.auth()
class SessionCookie:
    def get(self, case, context) -> str:
        base = case.operation.base_url.rstrip("/")
        http = requests.Session()
        name = "fuzz_" + uuid.uuid4().hex[:10]
        http.post(base + "/api/auth/signup", json={"username": name, "password": PASSWORD}, timeout=10)
        http.post(base + "/api/auth/login", json={"username": name, "password": PASSWORD}, timeout=10)
        session = http.cookies["session"]
        with open(os.environ["FUZZ_SESSIONS_FILE"], "a") as seen:
            seen.write(session + "\n")
        return session

    def set(self, case, data: str, context) -> None:
        case.cookies = {**(case.cookies or {}), "session": data}
