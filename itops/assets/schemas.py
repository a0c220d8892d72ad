"""/api/v1/assets input and output. Field checks reuse validation.py, as the forms and CSV import do."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from itops.assets import validation
from itops.assets.choices import DEVICE_TYPE_NAMES, SORTS, AssetKind, Status


class Normalised(fields.String):
    """A string field normalised by one of validation.py's functions (IMEI, MAC, E.164, ...)."""

    def __init__(self, check, **kwargs):
        super().__init__(allow_none=True, **kwargs)
        self.check = check

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.check(text) if text.strip() else None
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Money(fields.Decimal):
    def __init__(self, **kwargs):
        super().__init__(places=2, as_string=True, allow_none=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return validation.money(str(value))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _text(length: int = 128, **kwargs):
    return fields.String(allow_none=True, validate=validate.Length(max=length), **kwargs)


class AssetFieldsSchema(Schema):
    """What a client may set; kind-specific fields are refused on the wrong kind by the service."""
    tag = Normalised(validation.tag)
    name = fields.String(validate=validate.Length(min=1, max=255))
    serial = _text()
    manufacturer = _text()
    model = _text()
    location = _text()
    purchase_date = fields.Date(allow_none=True)
    cost = Money()
    supplier = _text()
    warranty_end = fields.Date(allow_none=True)
    notes = _text(5000)
    imei = Normalised(validation.imei)
    phone_number = Normalised(validation.e164)
    iccid = Normalised(validation.iccid)
    carrier = _text(64)
    mac = Normalised(validation.mac)
    extension = _text(16)
    management_address = _text(255)
    device_type = fields.String(allow_none=True, validate=validate.OneOf(sorted(DEVICE_TYPE_NAMES)))
    credential_id = fields.Integer(allow_none=True)


class AssetCreateSchema(AssetFieldsSchema):
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in AssetKind]))
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    status = fields.String(load_default=Status.IN_STOCK.value,
                           validate=validate.OneOf([Status.ORDERED.value, Status.IN_STOCK.value]))


class PersonSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()


class AssetSchema(AssetFieldsSchema):
    id = fields.Integer(dump_only=True)
    kind = fields.String()
    status = fields.String()
    holder = fields.Nested(PersonSchema, allow_none=True)
    expected_return = fields.Date(allow_none=True)
    last_seen_at = fields.DateTime(allow_none=True)
    last_user = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    credential_id = fields.Integer(allow_none=True)


class AssetDetailSchema(AssetSchema):
    facts = fields.Dict(allow_none=True, metadata={"description": "What the inventory agent last reported."})
    allowed_next_statuses = fields.Function(lambda asset: [s.value for s in asset.status_enum.allowed_next])


class AssetPageSchema(Schema):
    items = fields.List(fields.Nested(AssetSchema))
    next_cursor = fields.String(allow_none=True)


class AssetListQuerySchema(Schema):
    q = fields.String(load_default=None, validate=validate.Length(max=100))
    kind = fields.String(load_default=None, validate=validate.OneOf([k.value for k in AssetKind]))
    status = fields.String(load_default=None, validate=validate.OneOf([s.value for s in Status]))
    location = fields.String(load_default=None, validate=validate.Length(max=128))
    holder = fields.String(load_default=None, validate=validate.Length(max=64),
                           metadata={"description": "Username of the holder."})
    warranty_days = fields.Integer(load_default=None, validate=validate.Range(0, 3650))
    sort = fields.String(load_default="tag", validate=validate.OneOf(list(SORTS)))
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class StatusChangeSchema(Schema):
    note = fields.String(load_default=None, validate=validate.Length(max=300))


class CheckoutSchema(Schema):
    holder = fields.String(required=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": "Username of the person receiving the asset."})
    expected_return = fields.Date(load_default=None)
    condition = fields.String(load_default=None, validate=validate.Length(max=500))


class CheckinSchema(Schema):
    status = fields.String(load_default=Status.IN_STOCK.value,
                           validate=validate.OneOf([Status.IN_STOCK.value, Status.IN_REPAIR.value,
                                                    Status.RETIRED.value]))
    condition = fields.String(load_default=None, validate=validate.Length(max=500))


class EventSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    kind = fields.String()
    actor = fields.String(attribute="actor_label")
    holder = fields.Nested(PersonSchema, allow_none=True)
    summary = fields.String()
    details = fields.Dict(allow_none=True)


class EnrollResponseSchema(Schema):
    asset_id = fields.Integer()
    asset_tag = fields.String()
    agent_token = fields.String(metadata={"description": "Shown once; the agent stores it with mode 0600."})
    report_interval_seconds = fields.Integer()


class InventoryResponseSchema(Schema):
    asset_id = fields.Integer()
    asset_tag = fields.String()
    changes = fields.Integer()
    report_interval_seconds = fields.Integer()
