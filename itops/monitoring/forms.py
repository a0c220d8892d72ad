"""Monitoring forms: a check on one asset, the same check on many, and the configuration diff choice.
They check shape; what a check kind needs (a port, a community, a stored login) is the services' rule."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from itops.assets.choices import AssetKind, Status
from itops.monitoring.choices import CheckKind

KIND_CHOICES = [SelectChoice(kind.value, kind.label) for kind in CheckKind]


class CheckForm(FlaskForm):
    kind = SelectField("Check", choices=KIND_CHOICES, validators=[InputRequired()])
    port = IntegerField("Port", validators=[Optional(), NumberRange(1, 65535)],
                        description="TCP: required. SSH 22, SNMP 161, SIP 5060 when empty.")
    host = StringField("Host", validators=[Optional(), Length(max=253)],
                       description="Empty: the asset's management address.")
    community = PasswordField("SNMP community", validators=[Optional(), Length(max=100)],
                              description="Stored encrypted, never shown again.")
    commands = TextAreaField("SSH commands", validators=[Optional(), Length(max=2000)],
                             description="One per line; empty: the device type's defaults.")
    interval_seconds = IntegerField("Every (seconds)", default=60, validators=[InputRequired(), NumberRange(5, 86400)])
    timeout_seconds = DecimalField("Timeout (seconds)", default=5, places=1,
                                   validators=[InputRequired(), NumberRange(0.1, 120)])

    def params(self) -> dict:
        commands = [line.strip() for line in (self.commands.data or "").splitlines() if line.strip()]
        return {"port": self.port.data, "host": (self.host.data or "").strip() or None,
                "community": self.community.data or None, "commands": commands or None}


class BulkCheckForm(CheckForm):
    """The same check on every asset a filter matches (the asset list's filters)."""
    asset_kind = SelectField("Asset kind", choices=[SelectChoice("", "Any kind")] + [
        SelectChoice(kind.value, kind.label) for kind in AssetKind], validators=[Optional()])
    asset_status = SelectField("Status", choices=[SelectChoice("", "Any status")] + [
        SelectChoice(status.value, status.label) for status in Status], validators=[Optional()])
    location = StringField("Location", validators=[Optional(), Length(max=100)])
    q = StringField("Search", validators=[Optional(), Length(max=100)])

    def asset_filters(self) -> dict:
        return {"kind": self.asset_kind.data or None, "status": self.asset_status.data or None,
                "location": (self.location.data or "").strip() or None, "q": (self.q.data or "").strip() or None}
