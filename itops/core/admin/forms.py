from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.validators import Optional, Length

from itops.core.policy import Role

ROLE_CHOICES = [SelectChoice(r.value, r.label) for r in Role]


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
    submit = SubmitField("Change role")


class AuditFilterForm(FlaskForm):
    """GET filters: no CSRF needed, and the values live in the URL so a filtered view can be shared."""

    class Meta:
        csrf = False

    actor = StringField("User", validators=[Optional(), Length(max=120)])
    action = StringField("Action", validators=[Optional(), Length(max=64)])
    object_type = StringField("Object type", validators=[Optional(), Length(max=64)])
    object_id = StringField("Object id", validators=[Optional(), Length(max=64)])
    since = DateField("From", validators=[Optional()])
    until = DateField("Until (inclusive)", validators=[Optional()])
    submit = SubmitField("Filter")


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=100)])
    role = SelectField("Role", choices=[SelectChoice("", "Any role"), *ROLE_CHOICES], validators=[Optional()])
    submit = SubmitField("Filter")
