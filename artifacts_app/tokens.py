"""API tokens: issued once in clear, stored as a hash, checked in constant time, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session

from . import queries
from .extensions import db
from .models import ApiToken, User
from .types import utcnow

TOKEN_PREFIX = "art_"
PREFIX_LENGTH = 12  # "art_" and 8 characters: enough for a person to tell tokens apart
MAX_NAME_LENGTH = 100
# last_used_at is for people ("used 3 minutes ago"); writing it on every request is not.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(ValueError):
    """A token could not be created; the message says why, for the person."""


def hash_token(token: str) -> str:
    """The stored form of a token. The token has 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for the user and its clear text, which is shown once and never stored."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise TokenError(f"Give the token a name of 1 to {MAX_NAME_LENGTH} characters.")
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(clear), prefix=clear[:PREFIX_LENGTH])
    db.session.add(token)
    db.session.flush()
    return token, clear


TOUCH_KEY = "token_last_used"  # session.info: the token whose last_used_at this transaction writes


def well_formed(clear: str) -> bool:
    """Whether a text could be a token of this app at all (its prefix): what is not needs no lookup."""
    return clear.startswith(TOKEN_PREFIX)


def authenticate(clear: str, *, write_now: bool = True) -> User | None:
    """The user a bearer token belongs to, or None for an unknown or revoked token: one statement.

    When the token's last use is older than LAST_USED_RESOLUTION, last_used_at is written in the
    caller's transaction (the caller commits), or with `write_now=False` left for record_use: a
    request that only reads writes it after its reads, since a SQLite transaction that has read
    cannot take the write lock while another writer holds it.
    """
    if not well_formed(clear):
        return None
    digest = hash_token(clear)
    found = queries.token_with_user(digest)
    if found is None:
        return None
    token, user = found
    # The lookup is by hash, so timing reveals nothing about the token; compare anyway, in
    # constant time, so correctness never rests on the database's collation.
    if not hmac.compare_digest(token.token_hash, digest) or token.revoked_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        if write_now:
            touch(token.id, now)
        else:
            db.session.info[TOUCH_KEY] = (token.id, now)
    return user


def touch(token_id: str, now: datetime) -> None:
    """Write the token's last use, unless another request has within the minute (so concurrent
    requests write it once); remembered until the transaction commits."""
    db.session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id,
               or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.info[TOUCH_KEY] = (token_id, now)


def record_use() -> None:
    """At the end of a request: a last use not committed with it (a read, a failure, or a view that
    did not commit) is written in a transaction of its own. Whatever the request left uncommitted is
    rolled back first, never committed here."""
    pending = db.session.info.get(TOUCH_KEY)
    if pending is None:
        return
    db.session.rollback()
    touch(*pending)
    db.session.commit()


@event.listens_for(Session, "after_commit")
def _used_committed(session: Session) -> None:
    session.info.pop(TOUCH_KEY, None)


def revoke(token: ApiToken) -> None:
    """Stop a token from working, at once; the caller commits."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()


def revoke_all(user: User) -> int:
    """Revoke every working token of the user (after a password change); how many. The caller commits."""
    working = db.session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).scalars().all()
    for token in working:
        revoke(token)
    return len(working)
