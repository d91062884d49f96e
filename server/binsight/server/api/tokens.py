"""``/api/tokens`` (admin): list, create and revoke API tokens, as ``binsight server token`` does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from binsight.server.auth import Principal, Role, create_token, hash_token, revoke_token, token_rows
from binsight.server.auth import require as require_role
from binsight.server.db.models import ApiToken
from binsight.server.state import AppState, get_state

router = APIRouter(prefix="/api/tokens", tags=["tokens"])

Admin = Annotated[Principal, Depends(require_role("admin"))]
State = Annotated[AppState, Depends(get_state)]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str | None = Field(default=None, max_length=100)
    truck: str | None = Field(default=None, max_length=64, description="driver tokens: the truck")


def _row(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "role": t.role,
        "truck": t.truck,
        "created_at": t.created_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    }


@router.get("")
def list_tokens(_who: Admin, state: State, include_revoked: bool = False) -> list[dict[str, Any]]:
    """Every token's id, name, role, truck and times; never a token (only digests are stored)."""
    with state.sessions() as s:
        return [_row(t) for t in token_rows(s, include_revoked=include_revoked)]


@router.post("", status_code=201)
def new_token(body: TokenCreate, _who: Admin, state: State) -> dict[str, Any]:
    """Create a token; the answer is the only time the token itself is shown."""
    with state.sessions() as s, s.begin():
        try:
            token = create_token(s, body.role, body.name, body.truck)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        s.flush()
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).scalar_one()
        return {**_row(row), "token": token}


@router.post("/{token_id}/revoke")
def revoke(token_id: int, _who: Admin, state: State) -> dict[str, Any]:
    """Revoke a token at once (its next request is 401); revoking twice keeps the first time."""
    with state.sessions() as s, s.begin():
        try:
            return _row(revoke_token(s, token_id))
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
