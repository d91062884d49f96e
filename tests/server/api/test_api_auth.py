"""Requests without a token get 401, with a bad token 401, with the wrong role 403."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_helpers import Api


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Authorization does not depend on the backend: SQLite only (the storage tests cover both)."""
    return f"sqlite:///{tmp_path / 'auth.db'}"


# (method, path, roles admitted besides admin)
ENDPOINTS = [
    ("GET", "/api/me", {"operator", "labeller", "driver"}),
    ("GET", "/api/bins", {"operator", "labeller"}),
    ("GET", "/api/bins/x/history", {"operator", "labeller"}),
    ("GET", "/api/devices", {"operator"}),
    ("GET", "/api/devices/x/events", {"operator"}),
    ("POST", "/api/devices/x/commands", {"operator"}),
    ("POST", "/api/plans", {"operator"}),
    ("GET", "/api/plans/latest", {"operator"}),
    ("GET", "/api/plans/x/export.csv", {"operator"}),
    ("GET", "/api/plans", {"operator"}),
    ("GET", "/api/plans/x/problem", {"operator"}),
    ("POST", "/api/plans/x/publish", {"operator"}),
    ("POST", "/api/plans/x/unpublish", {"operator"}),
    ("POST", "/api/plans/x/move", {"operator"}),
    ("GET", "/api/manifests/truck-1", {"operator", "driver"}),
    ("POST", "/api/manifests/truck-1/stops/x", {"operator", "driver"}),
    ("GET", "/api/stop-reports", {"operator"}),
    ("GET", "/api/tokens", set()),
    ("POST", "/api/tokens", set()),
    ("POST", "/api/tokens/1/revoke", set()),
    ("GET", "/api/labels/queue", {"labeller"}),
    ("POST", "/api/images/1/label", {"labeller"}),
    ("POST", "/api/images/1/skip", {"labeller"}),
    ("GET", "/api/images/1", {"labeller", "operator"}),
    ("GET", "/api/labels/stats", {"labeller", "operator"}),
    ("GET", "/api/labels/export", {"labeller"}),
    ("GET", "/api/models", {"operator"}),
    ("GET", "/api/ingest", {"operator"}),
]


@pytest.mark.parametrize(("method", "path", "roles"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_roles(api: Api, method: str, path: str, roles: set[str]) -> None:
    """No token and a wrong token are 401; each role is admitted or refused with 403 as the contract says."""
    r = api.client.request(method, path)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = api.client.request(method, path, headers={"Authorization": "Bearer bst_not-a-token"})
    assert r.status_code == 401
    r = api.client.request(method, path, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401
    for role in ("admin", "operator", "labeller", "driver"):
        r = api.client.request(method, path, headers=api.h(role), json={})
        if role == "admin" or role in roles:
            assert r.status_code not in (401, 403), (role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code, r.text)
            assert role in r.json()["detail"]


def test_tokens_stored_hashed(api: Api) -> None:
    """The database holds only sha256 digests of tokens, never a token itself."""
    from sqlalchemy import select

    from binsight.server.auth import hash_token
    from binsight.server.db.models import ApiToken

    with api.sessions() as s:
        stored = {t.token_hash for t in s.execute(select(ApiToken)).scalars()}
    assert stored == {hash_token(t) for t in api.tokens.values()}
    assert not stored & set(api.tokens.values())


def test_revoked_token_refused(api: Api) -> None:
    """A revoked token is 401 at once."""
    from sqlalchemy import update

    from binsight.server.auth import hash_token
    from binsight.server.db.models import ApiToken

    assert api.get("/api/me", "operator").json() == {
        "name": "operator-test",
        "role": "operator",
        "truck": None,
    }
    with api.sessions() as s, s.begin():
        s.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(api.tokens["operator"]))
            .values(revoked_at=1)
        )
    assert api.get("/api/me", "operator").status_code == 401
