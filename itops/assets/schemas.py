"""/api/v1/assets input and output. Field checks reuse validation.py, as the forms and CSV import do."""
from __future__ import annotations

from operator import attrgetter

from marshmallow import Schema, ValidationError, fields, validate

from itops.assets import queries, validation
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


class RowDumper:
    """What `schema.dump()` gives, for light rows (queries.row_shape) and several times faster.

    The API list dumps 50 rows x 29 fields, which costs marshmallow about 2.5 ms a page. Here the fields
    are looked at once: strings and integers are copied as they are, other values go through the field's
    own formatting, nested schemas through a dumper of their own."""

    def __init__(self, schema: Schema):
        self._plan = [(field.data_key or name, attrgetter(field.attribute or name), self._converter(field))
                      for name, field in schema.dump_fields.items()]

    @staticmethod
    def _converter(field: fields.Field):
        if not field._CHECK_ATTRIBUTE:
            raise TypeError(f"{type(field).__name__} reads the whole object, not one attribute of a row")
        if isinstance(field, fields.Nested):
            return RowDumper(field.schema).dump
        plain_string = type(field)._serialize is fields.String._serialize
        plain_integer = isinstance(field, fields.Integer) and not field.as_string
        if plain_string or plain_integer:
            return None
        return lambda value: field._serialize(value, None, None)

    def dump(self, row) -> dict | None:
        if row is None:
            return None
        dumped = {}
        for key, read, convert in self._plan:
            value = read(row)
            dumped[key] = value if value is None or convert is None else convert(value)
        return dumped


def _row_shape_for(schema: Schema, holder_schema: Schema):
    """The light row that holds what `schema` dumps, its holder's fields (`holder_schema`) included."""
    return queries.row_shape(*(name for name in schema.dump_fields if name != "holder"),
                             holder=tuple(holder_schema.dump_fields))


# The API list's rows and their dumper: both follow AssetSchema, so a field added there appears here.
ASSET_ROW = _row_shape_for(AssetSchema(), PersonSchema())
_ASSET_ROW_DUMPER = RowDumper(AssetSchema())


def dump_asset_page(page) -> dict:
    """An asset_page() of ASSET_ROW rows as AssetPageSchema dumps it."""
    return {"items": [_ASSET_ROW_DUMPER.dump(row) for row in page.items], "next_cursor": page.next_cursor}


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
