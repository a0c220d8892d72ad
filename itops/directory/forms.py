"""HR's and admins' directory forms. The services check the values again (the CSV import, SCIM and the
CLI reach them without these forms); a form only keeps obviously bad input from getting that far."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
# InputRequired for dates: DataRequired would replace 'not a valid date' with 'required'.
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from itops.assets.choices import AssetKind
from itops.directory.choices import PersonState
from itops.directory.queries import SORTS

ANY = ""
MAX_GROUPS_TEXT = 4000


def _text(label, *, required=False, length=100, **kwargs):
    return StringField(label, validators=[DataRequired() if required else Optional(), Length(max=length)], **kwargs)


def _manager_field():
    return _text("Manager", length=64, description="The manager's employee number; empty for none.")


class PreviewedForm(FlaskForm):
    """A form that is previewed first: the preview page posts its values back with `confirmed` set."""
    confirmed = HiddenField()

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed.data == "yes"

    def values(self) -> dict:
        return {name: field.data for name, field in self._fields.items() if name not in ("confirmed", "csrf_token")}


class PersonFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form: nothing changes

    q = _text("Search", description="Name, username, employee number or email.")
    state = SelectField("State", choices=[SelectChoice(ANY, "Any state")]
                        + [SelectChoice(s.value, s.label) for s in PersonState], validators=[Optional()])
    department = _text("Department")
    location = _text("Location")
    manager = _text("Manager", length=64, description="Employee number or username.")
    sort = SelectField("Sort by", choices=[SelectChoice(key, label) for key, (label, _) in SORTS.items()],
                       default="name", validators=[Optional()])


class OnboardForm(PreviewedForm):
    employee_number = _text("Employee number", required=True, length=64)
    given_name = _text("Given name", required=True)
    family_name = _text("Family name", required=True)
    preferred_name = _text("Preferred name", description="Used for the account's display name if set.")
    email = _text("Email", length=254)
    department = _text("Department")
    title = _text("Title")
    manager_employee_number = _manager_field()
    location = _text("Location")
    start_date = DateField("Start date", validators=[InputRequired()],
                           description="The account is created on this date (at once if it is today or past).")
    end_date = DateField("End date", validators=[Optional()], description="Only for fixed-term contracts.")


class EditPersonForm(PreviewedForm):
    """Corrections to HR's record; department, title and manager change through a move."""
    employee_number = _text("Employee number", required=True, length=64)
    given_name = _text("Given name", required=True)
    family_name = _text("Family name", required=True)
    preferred_name = _text("Preferred name")
    email = _text("Email", length=254)
    location = _text("Location")
    start_date = DateField("Start date", validators=[InputRequired()])


class MoveForm(PreviewedForm):
    effective = DateField("Effective on", validators=[InputRequired()],
                          description="Groups and attributes change on this date (at once if today).")
    department = _text("Department")
    title = _text("Title")
    manager = _manager_field()


class OffboardForm(PreviewedForm):
    end_date = DateField("Last day", validators=[InputRequired()],
                         description="The account is disabled on this date (at once if today) and deleted after "
                                     "the grace period.")


class ImportForm(FlaskForm):
    file = FileField("HR CSV file", validators=[FileRequired("Choose a CSV file.")])


class GroupMappingForm(FlaskForm):
    department = _text("Department", description="Empty: any department.")
    title = _text("Title", description="Empty: any title.")
    groups = TextAreaField("Directory groups", validators=[DataRequired(), Length(max=MAX_GROUPS_TEXT)],
                           description="Group names (cn), one per line or separated by commas.",
                           render_kw={"rows": 3})

    def group_names(self) -> list[str]:
        return [name.strip() for line in self.groups.data.splitlines() for name in line.split(",") if name.strip()]


KIT_KINDS = ", ".join(kind.value for kind in AssetKind)


class KitTemplateForm(FlaskForm):
    department = _text("Department", required=True)
    items = TextAreaField("Items", validators=[Optional(), Length(max=MAX_GROUPS_TEXT)], render_kw={"rows": 4},
                          description=f"One per line: a kind ({KIT_KINDS}), optionally followed by ': model'.")

    def kit_items(self) -> list[dict]:
        items = []
        for line in (self.items.data or "").splitlines():
            kind, _, model = line.partition(":")
            if kind.strip():
                items.append({"kind": kind.strip().lower(), "model": model.strip() or None})
        return items
