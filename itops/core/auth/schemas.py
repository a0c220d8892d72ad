"""API shapes for users and tokens."""
from flask import g
from marshmallow import Schema, fields, validate

from itops.core.policy import Role


class UserSchema(Schema):
    id = fields.Int(dump_only=True)
    username = fields.Str(dump_only=True)
    display_name = fields.Str(dump_only=True)
    email = fields.Str(dump_only=True, allow_none=True)
    role = fields.Str(dump_only=True, metadata={"enum": [r.value for r in Role]})
    source = fields.Str(dump_only=True)
    active = fields.Bool(dump_only=True)
    last_login_at = fields.DateTime(dump_only=True, allow_none=True)


class MeSchema(UserSchema):
    auth_method = fields.Function(lambda _user: g.get("auth_method"), dump_only=True,
                                  metadata={"description": "session or token", "type": "string"})


class TokenSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(dump_only=True)
    prefix = fields.Str(dump_only=True, metadata={"description": "first characters, to tell tokens apart"})
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)


class TokenCreateSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))


class IssuedTokenSchema(TokenSchema):
    token = fields.Str(attribute="secret", dump_only=True,
                       metadata={"description": "the secret; shown only in this response"})


class UserListQuerySchema(Schema):
    q = fields.Str(load_default=None, validate=validate.Length(max=100))
    role = fields.Str(load_default=None, validate=validate.OneOf([r.value for r in Role]))
    cursor = fields.Str(load_default=None)
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserSchema))
    next_cursor = fields.Str(allow_none=True)
