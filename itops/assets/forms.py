"""Asset forms. Field checks reuse validation.py, so the browser, the API and CSV import agree."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField, IntegerField, PasswordField, SelectField, StringField, SubmitField, TextAreaField, ValidationError,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from itops.assets import validation
from itops.assets.choices import CHECKIN_TARGETS, DEVICE_TYPES, SORTS, AssetKind, Status

KIND_CHOICES = [SelectChoice(kind.value, kind.label) for kind in AssetKind]
STATUS_CHOICES = [SelectChoice(status.value, status.label) for status in Status]
ANY = ""


def _checked_by(check):
    """A WTForms validator that normalises the field's text with a validation.py function."""
    def validate(form, field):
        if field.data:
            try:
                field.data = check(field.data)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
    return validate


def _optional_text(label, length=128, **kwargs):
    return StringField(label, validators=[Optional(), Length(max=length)], **kwargs)


class AssetForm(FlaskForm):
    kind = SelectField("Kind", choices=KIND_CHOICES, validators=[DataRequired()])
    tag = StringField("Asset tag", validators=[Optional(), _checked_by(validation.tag)],
                      description="Leave empty to get the next IT-nnnnnn tag.")
    name = StringField("Name or hostname", validators=[DataRequired(), Length(max=255)])
    serial = _optional_text("Serial number")
    manufacturer = _optional_text("Manufacturer")
    model = _optional_text("Model")
    location = _optional_text("Location")
    purchase_date = DateField("Purchase date", validators=[Optional()])
    cost = StringField("Cost", validators=[Optional(), _checked_by(validation.money)])
    supplier = _optional_text("Supplier")
    warranty_end = DateField("Warranty ends", validators=[Optional()])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])
    imei = StringField("IMEI", validators=[Optional(), _checked_by(validation.imei)])
    phone_number = StringField("Phone number", validators=[Optional(), _checked_by(validation.e164)],
                               description="International form, e.g. +4915112345678.")
    iccid = StringField("SIM ICCID", validators=[Optional(), _checked_by(validation.iccid)])
    carrier = _optional_text("Carrier", 64)
    mac = StringField("MAC address", validators=[Optional(), _checked_by(validation.mac)])
    extension = _optional_text("Extension", 16)
    management_address = _optional_text("Management address", 255, description="IP address or DNS name.")
    device_type = SelectField("Device type (netmiko)", choices=[SelectChoice(ANY, "—")] + [SelectChoice(*pair) for pair in DEVICE_TYPES],
                              validators=[Optional()])
    credential_id = SelectField("Login credential", coerce=lambda v: int(v) if v else None, choices=[],
                                validators=[Optional()], validate_choice=False)
    submit = SubmitField("Save")

    def values(self) -> dict:
        return {name: field.data for name, field in self._fields.items()
                if name not in ("kind", "submit", "csrf_token")}


class AssetFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form: nothing changes

    q = StringField("Search", validators=[Optional(), Length(max=100)],
                    description="Tag, name, serial, IMEI, MAC or holder.")
    kind = SelectField("Kind", choices=[SelectChoice(ANY, "Any kind"), *KIND_CHOICES], validators=[Optional()])
    status = SelectField("Status", choices=[SelectChoice(ANY, "Any status"), *STATUS_CHOICES], validators=[Optional()])
    location = _optional_text("Location")
    holder = StringField("Holder", validators=[Optional(), Length(max=64)], description="Username.")
    warranty_days = IntegerField("Warranty ends within (days)", validators=[Optional(), NumberRange(0, 3650)])
    sort = SelectField("Sort by", choices=[SelectChoice(*pair) for pair in SORTS.items()], default="tag", validators=[Optional()])


class CheckoutForm(FlaskForm):
    holder = StringField("Check out to (username)", validators=[DataRequired(), Length(max=64)],
                         render_kw={"list": "people", "autocomplete": "off"})
    expected_return = DateField("Expected return", validators=[Optional()])
    condition = TextAreaField("Condition notes", validators=[Optional(), Length(max=500)], render_kw={"rows": 2})
    submit = SubmitField("Check out")


class CheckinForm(FlaskForm):
    status = SelectField("Back to", choices=[SelectChoice(s.value, s.label) for s in CHECKIN_TARGETS], default=Status.IN_STOCK.value)
    condition = TextAreaField("Condition notes", validators=[Optional(), Length(max=500)], render_kw={"rows": 2})
    submit = SubmitField("Check in")


class StatusForm(FlaskForm):
    status = SelectField("New status", choices=STATUS_CHOICES, validators=[DataRequired()])
    note = StringField("Note", validators=[Optional(), Length(max=300)])
    submit = SubmitField("Change status")


class CredentialForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)],
                       description="How IT staff will pick it, e.g. 'core switches'.")
    username = StringField("Username", validators=[DataRequired(), Length(max=100)],
                           render_kw={"autocomplete": "off"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=500)],
                             render_kw={"autocomplete": "new-password"})
    enable_secret = PasswordField("Enable secret (optional)", validators=[Optional(), Length(max=500)],
                                  render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Store credential")


class EnrollmentTokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)],
                       description="Where it will be used, e.g. 'laptop rollout 2026'.")
    days = IntegerField("Valid for (days)", default=30, validators=[DataRequired(), NumberRange(1, 365)])
    submit = SubmitField("Create enrollment token")


class ImportForm(FlaskForm):
    """CSV import, step 1: the upload that is checked and previewed, not yet written."""
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file.")],
                     render_kw={"accept": ".csv,text/csv"},
                     description="UTF-8, at most 5 MiB and 50,000 rows; columns as in the export.")
    submit = SubmitField("Check the file")


class ImportConfirmForm(FlaskForm):
    """CSV import, step 2: import every row (only if all are valid) or only the valid ones."""
    mode = SelectField("Import", validators=[DataRequired()],
                       choices=[SelectChoice("all", "All rows"), SelectChoice("valid_only", "Only the valid rows")])
