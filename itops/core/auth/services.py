"""Authentication, users and API tokens. Services add and flush; the request or command commits."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from itops.core import audit
from itops.core.auth.models import ApiToken, AuthSource, User
from itops.core.crypto import new_secret_token, token_digest
from itops.core.database import insert_now, utcnow
from itops.core.errors import Conflict, DomainError, NotFound, ValidationFailed, found
from itops.core.policy import Role
from itops.extensions import db

TOKEN_PREFIX = "itops_"
# A token's last-used time is written at most this often, not on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 12


class AuthenticationFailed(DomainError):
    status = 401
    title = "Sign-in failed"


GENERIC_FAILURE = "Wrong username or password, or the account is disabled."


@functools.cache
def _dummy_hash(method: str) -> str:
    """Checked against when the user is unknown, so a wrong username costs as long as a wrong password."""
    return generate_password_hash("itops-timing-equaliser", method=method)


def _hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["ITOPS_PASSWORD_HASH_METHOD"])


# --- users -----------------------------------------------------------------------------------

def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def get_user(user_id: int) -> User:
    return found(db.session.get(User, user_id), "user")


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == normalise_username(username)))


def user_summary(user: User) -> dict:
    return {"username": user.username, "display_name": user.display_name, "email": user.email,
            "role": user.role, "source": user.source, "active": user.active}


def create_local_user(username: str, password: str, *, role: Role | str, display_name: str | None = None,
                      email: str | None = None, by=None) -> User:
    username = normalise_username(username)
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ValidationFailed("Usernames use letters, digits, dots, dashes and underscores (at most 64).",
                               errors={"username": ["Not a valid username."]})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
                               errors={"password": ["Too short."]})
    try:
        role = Role(role)
    except ValueError:
        raise ValidationFailed(f"Unknown role {role!r}.", errors={"role": ["Unknown role."]}) from None
    if find_user(username) is not None:
        raise Conflict(f"A user named {username} already exists.")
    user = User(username=username, display_name=display_name or username, email=email, role=role.value,
                source=AuthSource.LOCAL, password_hash=_hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", "user", user.id, summary=f"created local user {username} ({role.label})",
                 after=user_summary(user), actor=by)
    return user


def set_password(user: User, password: str, *, by=None) -> None:
    if user.source != AuthSource.LOCAL:
        raise Conflict("Directory users change their password in the directory.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
                               errors={"password": ["Too short."]})
    user.password_hash = _hash_password(password)
    user.session_version += 1
    audit.record("user.password", "user", user.id, summary=f"password changed for {user.username}", actor=by)


def change_role(user: User, role: Role | str, *, by) -> None:
    role = Role(role)
    if user.id == getattr(by, "id", None) and role != Role.ADMIN:
        raise Conflict("You cannot take away your own administrator role.")
    before = user_summary(user)
    user.role = role.value
    audit.record("user.role", "user", user.id, summary=f"{user.username} is now {role.label}",
                 before={"role": before["role"]}, after={"role": user.role}, actor=by)


def set_active(user: User, active: bool, *, by) -> None:
    if user.id == getattr(by, "id", None) and not active:
        raise Conflict("You cannot disable your own account.")
    user.active = active
    if not active:
        user.session_version += 1
    audit.record("user.enable" if active else "user.disable", "user", user.id,
                 summary=f"{'enabled' if active else 'disabled'} {user.username}",
                 before={"active": not active}, after={"active": active}, actor=by)


def revoke_sessions(user: User, *, by, reason: str = "revoked by an administrator") -> None:
    """Sign the user out everywhere: every session cookie carries the old version and stops working."""
    user.session_version += 1
    audit.record("user.revoke_sessions", "user", user.id, summary=f"signed {user.username} out everywhere: {reason}",
                 actor=by)


def revoke_everything(user: User, *, by, reason: str) -> None:
    """Sessions and API tokens: what a leaver or a compromised account needs."""
    revoke_sessions(user, by=by, reason=reason)
    for token in user.tokens:
        if not token.is_revoked:
            token.revoked_at = utcnow()
    audit.record("user.revoke_tokens", "user", user.id, summary=f"revoked all API tokens of {user.username}: {reason}",
                 actor=by)


def system_account(username: str, display_name: str) -> User:
    """The account a domain's automation acts as (monitoring files incident tickets as one): IT staff,
    without a password, so nobody can sign in as it."""
    user = find_user(username)
    if user is None:
        user = User(username=username, display_name=display_name, role=Role.IT_STAFF.value, source=AuthSource.LOCAL,
                    password_hash=None)
        db.session.add(user)
        db.session.flush()
        audit.record("user.create", "user", user.id, summary=f"created system account {username}", actor="system")
    return user


def user_query(search: str | None = None, role: str | None = None):
    query = select(User)
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(func.lower(User.username).like(pattern) | func.lower(User.display_name).like(pattern))
    if role:
        query = query.where(User.role == role)
    return query


# --- sign-in ---------------------------------------------------------------------------------

def authenticate(username: str, password: str) -> User:
    """The user these credentials belong to, or AuthenticationFailed (the reason is not revealed)."""
    username = normalise_username(username)
    if not username or not password:
        raise AuthenticationFailed("Enter your username and password.")
    user = find_user(username)
    if user is not None and user.source == AuthSource.LOCAL:
        if not (user.password_hash and check_password_hash(user.password_hash, password)) or not user.active:
            raise AuthenticationFailed(GENERIC_FAILURE)
    else:
        settings = current_app.config["ITOPS_LDAP"]
        if settings is None:
            check_password_hash(_dummy_hash(current_app.config["ITOPS_PASSWORD_HASH_METHOD"]), password)
            raise AuthenticationFailed(GENERIC_FAILURE)
        user = _authenticate_with_directory(settings, username, password, user)
    user.last_login_at = utcnow()
    audit.record("user.login", "user", user.id, summary=f"{user.username} signed in ({user.source})", actor=user)
    return user


def _authenticate_with_directory(settings, username: str, password: str, user: User | None) -> User:
    from itops.core.auth import directory  # ldap3 is loaded once a directory is used, not by every process

    account = directory.find_account(settings, username)
    if account is None or account.locked or not directory.verify_password(settings, account.dn, password):
        raise AuthenticationFailed(GENERIC_FAILURE)
    role = account.role(settings)
    if role is None:
        raise AuthenticationFailed("Your directory account is not in any group that may use itops.")
    if user is not None and not user.active:
        raise AuthenticationFailed(GENERIC_FAILURE)
    return sync_directory_user(account, role, user)


def import_directory_user(username: str) -> User | None:
    """Create or update the local user for a directory account without a sign-in (people who hold
    assets before they ever sign in). None if the account is missing, locked or has no itops role."""
    from itops.core.auth import directory

    settings = current_app.config["ITOPS_LDAP"]
    if settings is None:
        raise Conflict("No directory is configured (ITOPS_LDAP_URL is not set).")
    account = directory.find_account(settings, normalise_username(username))
    role = account.role(settings) if account and not account.locked else None
    if role is None:
        return None
    return sync_directory_user(account, role, find_user(account.username))


def sync_directory_user(account, role: Role, user: User | None) -> User:
    """The local user row mirrors the directory entry: name, email, DN and role."""
    return sync_directory_users([(account, role, user)])[0]


def sync_directory_users(entries: list[tuple[Any, Role, User | None]]) -> list[User]:
    """`sync_directory_user` for many (account, role, user or None) at once, in one flush (a batch of joiners)."""
    synced = []
    for account, role, user in entries:
        before = None if user is None else user_summary(user)
        if user is None:
            user = User(username=account.username, source=AuthSource.DIRECTORY, role=role.value,
                        display_name=account.display_name)
        user.display_name = account.display_name
        user.email = account.email
        user.directory_dn = account.dn
        user.role = role.value
        synced.append((user, before))
    insert_now(db.session, User, [user for user, before in synced if before is None])
    rows = []
    for user, before in synced:
        if before is None:
            rows.append(audit.values("user.create", "user", user.id, after=user_summary(user), actor=user,
                                     summary=f"created {user.username} from the directory"))
        elif before != user_summary(user):
            old, new = audit.changes(before, user_summary(user))
            rows.append(audit.values("user.directory_update", "user", user.id, before=old, after=new, actor=user,
                                     summary=f"updated {user.username} from the directory"))
    audit.record_many(rows)
    return [user for user, _ in synced]


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's user loader: the id carries the session version, so a bumped version logs out."""
    user_id, _, version = (session_id or "").partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


# --- API tokens ------------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def issue_token(user: User, name: str, *, by=None) -> IssuedToken:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("Give the token a name of 1 to 100 characters.", errors={"name": ["Required."]})
    if any(t.name == name and not t.is_revoked for t in user.tokens):
        raise Conflict(f"You already have an active token named {name!r}.")
    secret = new_secret_token(TOKEN_PREFIX)
    token = ApiToken(user=user, name=name, prefix=secret[: len(TOKEN_PREFIX) + 6], token_hash=token_digest(secret))
    db.session.add(token)
    db.session.flush()
    audit.record("token.create", "api_token", token.id, summary=f"API token {name!r} created for {user.username}",
                 actor=by or user)
    return IssuedToken(token=token, secret=secret)


def user_for_token(secret: str) -> User | None:
    """The active user a bearer token belongs to, or None if it is unknown, revoked or its user disabled."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    found_token = db.session.execute(_token_lookup(), {"digest": token_digest(secret)}).first()
    if found_token is None:
        return None
    user, token_id, revoked_at, last_used_at = found_token
    if revoked_at is not None or not user.active:
        return None
    now = utcnow()
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return user


@functools.cache
def _token_lookup():
    """The user and the token's state in one query. Built once: building it cost more than running it, on
    every API call."""
    return (select(User, ApiToken.id, ApiToken.revoked_at, ApiToken.last_used_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == bindparam("digest")))


def get_token_of(user: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such API token.")  # someone else's token is simply not found
    return token


def revoke_token(token: ApiToken, *, by) -> None:
    if token.is_revoked:
        raise Conflict("This token is already revoked.")
    token.revoked_at = utcnow()
    audit.record("token.revoke", "api_token", token.id, summary=f"API token {token.name!r} of "
                 f"{token.user.username} revoked", actor=by)


def tokens_of(user: User) -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


# --- directory refresh -----------------------------------------------------------------------

def directory_users() -> list[User]:
    return list(db.session.scalars(select(User).where(User.source == AuthSource.DIRECTORY).order_by(User.id)))


def refresh_from_directory(progress, *, by) -> dict:
    """Re-read every directory-backed user: update names and roles, disable those gone or locked.

    A disabled account loses its sessions and tokens at once, not at its next sign-in attempt.
    """
    from itops.core.auth import directory

    settings = current_app.config["ITOPS_LDAP"]
    if settings is None:
        raise Conflict("No directory is configured (ITOPS_LDAP_URL is not set).")
    users = directory_users()
    progress.set_total(len(users))
    counts = {"checked": 0, "updated": 0, "disabled": 0, "unchanged": 0}
    for user in users:
        account = directory.find_account(settings, user.username)
        role = account.role(settings) if account and not account.locked else None
        if role is None:
            if user.active:
                user.active = False
                revoke_everything(user, by=by, reason="no longer an active directory account")
                audit.record("user.disable", "user", user.id, summary=f"disabled {user.username}: gone from "
                             "the directory, locked, or in no mapped group", actor=by)
                counts["disabled"] += 1
            else:
                counts["unchanged"] += 1
        else:
            before = user_summary(user)
            user.display_name, user.email, user.directory_dn = account.display_name, account.email, account.dn
            user.role = role.value
            if before != user_summary(user):
                old, new = audit.changes(before, user_summary(user))
                audit.record("user.directory_update", "user", user.id,
                             summary=f"updated {user.username} from the directory", before=old, after=new, actor=by)
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        counts["checked"] += 1
        progress.advance(message=f"checked {user.username}")
    return counts
