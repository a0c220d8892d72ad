"""/api/v1: the caller, personal API tokens, and (admins) users."""
from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from itops.core.auth import schemas, services
from itops.core.auth.models import User
from itops.core.pagination import keyset_page
from itops.core.policy import Role, require_role

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="The caller, API tokens and users")


@blp.get("/me")
@blp.response(200, schemas.MeSchema)
@require_role()
def me():
    """The signed-in user or the owner of the token."""
    return current_user


@blp.get("/tokens")
@blp.response(200, schemas.TokenSchema(many=True))
@require_role()
def list_tokens():
    """Your personal API tokens (never their secrets)."""
    return services.tokens_of(current_user)


@blp.post("/tokens")
@blp.arguments(schemas.TokenCreateSchema)
@blp.response(201, schemas.IssuedTokenSchema)
@require_role()
def create_token(body):
    """Create a token; its secret is in this response only."""
    issued = services.issue_token(current_user, body["name"])
    issued.token.secret = issued.secret  # dumped once as `token`, never stored
    return issued.token


@blp.delete("/tokens/<int:token_id>")
@blp.response(204)
@require_role()
def revoke_token(token_id):
    """Revoke one of your tokens."""
    services.revoke_token(services.get_token_of(current_user, token_id), by=current_user)


@blp.get("/users")
@blp.arguments(schemas.UserListQuerySchema, location="query")
@blp.response(200, schemas.UserPageSchema)
@require_role(Role.IT_STAFF, Role.HR)
def list_users(args):
    """Users, by username (IT staff, HR and administrators look colleagues up)."""
    page = keyset_page(services.user_query(args["q"], args["role"]), [(User.username, False)],
                       cursor=args["cursor"], limit=args["limit"])
    return {"items": page.items, "next_cursor": page.next_cursor}


@blp.post("/users/<int:user_id>/revoke-sessions")
@blp.response(204)
@require_role(Role.ADMIN)
def revoke_sessions(user_id):
    """Sign a user out of every browser session (administrators)."""
    services.revoke_sessions(services.get_user(user_id), by=current_user)
