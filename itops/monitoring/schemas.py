"""/api/v1/monitoring input and output. A check's stored secrets (the encrypted SNMP community) are
never part of any output: params are dumped through an allow-list."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from itops.monitoring.choices import CheckKind, Health

PUBLIC_PARAMS = ("port", "host", "commands", "oids", "required_interfaces", "disk_threshold_pct", "load_threshold",
                 "count", "stale_seconds")


class HealthQuerySchema(Schema):
    state = fields.String(load_default=None, validate=validate.OneOf([h.value for h in Health]))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class HealthSchema(Schema):
    asset_id = fields.Integer()
    state = fields.String(metadata={"enum": [h.value for h in Health]})
    since = fields.DateTime(attribute="changed_at")
    polled_at = fields.DateTime(allow_none=True)
    flapping = fields.Boolean()
    parent_asset_id = fields.Integer(allow_none=True)
    incident_ticket_id = fields.Function(lambda h: h.incident_ticket_id if h.incident_open else None,
                                         metadata={"type": "integer", "nullable": True,
                                                   "description": "The open incident ticket, if any."})


class HealthPageSchema(Schema):
    items = fields.List(fields.Nested(HealthSchema))
    next_cursor = fields.String(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())


class CheckParamsSchema(Schema):
    """What a check may be given; unknown keys are refused. The community is write-only."""
    port = fields.Integer(validate=validate.Range(1, 65535))
    host = fields.String(validate=validate.Length(max=253))
    community = fields.String(load_only=True, validate=validate.Length(min=1, max=100))
    commands = fields.List(fields.String(validate=validate.Length(min=1, max=200)), validate=validate.Length(max=20))
    oids = fields.Dict(keys=fields.String(validate=validate.Length(max=64)), values=fields.String(),
                       validate=validate.Length(max=50))
    required_interfaces = fields.List(fields.String(validate=validate.Length(max=64)), validate=validate.Length(max=100))
    disk_threshold_pct = fields.Float(validate=validate.Range(1, 100))
    load_threshold = fields.Float(validate=validate.Range(0, 1000))
    count = fields.Integer(validate=validate.Range(1, 10))
    stale_seconds = fields.Integer(validate=validate.Range(60, 31 * 86400))


class CheckCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in CheckKind]))
    params = fields.Nested(CheckParamsSchema, load_default=dict)
    interval_seconds = fields.Integer(load_default=60, validate=validate.Range(5, 86400))
    timeout_seconds = fields.Float(load_default=5.0, validate=validate.Range(0.1, 120))


class CheckSchema(Schema):
    id = fields.Integer()
    asset_id = fields.Integer()
    kind = fields.String()
    params = fields.Function(lambda c: {k: v for k, v in (c.params or {}).items() if k in PUBLIC_PARAMS},
                             metadata={"type": "object", "description": "Settings; secrets are never shown."})
    interval_seconds = fields.Integer()
    timeout_seconds = fields.Float()
    enabled = fields.Boolean()
    last_run_at = fields.DateTime(allow_none=True)
    last_status = fields.String(allow_none=True)
    last_latency_ms = fields.Float(allow_none=True)
    last_values = fields.Dict(allow_none=True)
    last_error = fields.String(allow_none=True)


class SeriesQuerySchema(Schema):
    period = fields.String(load_default="24h", validate=validate.OneOf(["1h", "24h", "7d", "30d"]))


class SeriesSchema(Schema):
    resolution = fields.String()
    points = fields.List(fields.List(fields.Raw()), metadata={
        "description": "[unix seconds, latency ms or null, share of good polls (0..1) or null]"})
