"""Helpdesk forms. They check shape only (required, length, one of the offered values); the rules that
depend on who is asking or on the ticket's state are the services' (and come back as domain errors).

Choices that come from the database (categories, teams, people, assets, canned responses) are set by
the view before validating.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField, DateField, RadioField, SelectField, SelectMultipleField, StringField, SubmitField, TextAreaField,
    ValidationError,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from itops.tickets.attachments import ALLOWED_EXTENSIONS
from itops.tickets.choices import BODY_MAX, SORTS, TITLE_MAX, Level, Priority, Queue, TicketStatus

ANY = ""
LEVEL_CHOICES = [SelectChoice(level.value, level.label) for level in Level]
STATUS_CHOICES = [SelectChoice(status.value, status.label) for status in TicketStatus]
PRIORITY_CHOICES = [SelectChoice(priority.value, priority.label) for priority in Priority]
ATTACH_KW = {"multiple": True, "accept": ",".join(ALLOWED_EXTENSIONS)}


# Row ids are 32-bit integers on every backend; a bigger number is bad input, not a database error.
MAX_ID = 2**31 - 1


def checked_id(value) -> int:
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise ValueError(f"{value!r} is not a valid id.")
    return number


def optional_int(value):
    """'' or None -> None; anything else must be a whole number in id range (WTForms turns the ValueError
    into a field error)."""
    if value in (None, "", "None"):
        return None
    return checked_id(value)


def ticket_number(form, field):
    """Accept '42' or '#42'."""
    text = (field.data or "").strip().lstrip("#").strip()
    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise ValidationError("Give a ticket number, e.g. 42.")
    field.data = int(text)


class TicketFilterForm(FlaskForm):
    """The list's filters, from the query string (GET: nothing changes, so no CSRF token)."""
    class Meta:
        csrf = False

    queue = SelectField("Queue", choices=[SelectChoice(q.value, q.label) for q in Queue], default=Queue.OPEN.value,
                        validators=[Optional()])
    q = StringField("Search", validators=[Optional(), Length(max=500)],
                    description="Words in the title, description or comments.")
    status = SelectField("Status", choices=[SelectChoice(ANY, "Any status"), *STATUS_CHOICES], validators=[Optional()])
    priority = SelectField("Priority", choices=[SelectChoice(ANY, "Any priority"), *PRIORITY_CHOICES],
                           validators=[Optional()])
    category_id = SelectField("Category", coerce=optional_int, choices=[], validate_choice=False,
                              validators=[Optional()])
    team_id = SelectField("Team", coerce=optional_int, choices=[], validate_choice=False, validators=[Optional()])
    assignee = StringField("Assignee", validators=[Optional(), Length(max=64)],
                           render_kw={"list": "staff-people", "autocomplete": "off", "placeholder": "username"})
    requester = StringField("Requester", validators=[Optional(), Length(max=64)],
                            render_kw={"autocomplete": "off", "placeholder": "username"})
    asset = StringField("Asset", validators=[Optional(), Length(max=64)],
                        render_kw={"autocomplete": "off", "placeholder": "tag"})
    created_from = DateField("Created from", validators=[Optional()])
    created_to = DateField("Created to", validators=[Optional()])
    updated_from = DateField("Updated from", validators=[Optional()])
    updated_to = DateField("Updated to", validators=[Optional()])
    sort = SelectField("Sort by", choices=[SelectChoice(*pair) for pair in SORTS.items()], default="-created",
                       validators=[Optional()])


class NewTicketForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired("Give the ticket a title."), Length(max=TITLE_MAX)],
                        description="In a few words, e.g. 'Laptop does not start'.")
    body = TextAreaField("Description", validators=[DataRequired("Describe the problem."), Length(max=BODY_MAX)],
                         render_kw={"rows": 6},
                         description="What happened, what you expected, and any error message you saw.")
    category_id = SelectField("Category", coerce=optional_int, choices=[], validators=[Optional()])
    impact = SelectField("Impact", choices=LEVEL_CHOICES, default=Level.LOW.value,
                         validators=[InputRequired("Choose the impact.")],
                         description="How many people it hurts: high = many people or a whole team, "
                                     "medium = a few, low = only you.")
    urgency = SelectField("Urgency", choices=LEVEL_CHOICES, default=Level.MEDIUM.value,
                          validators=[InputRequired("Choose the urgency.")],
                          description="How soon it hurts: high = you cannot work, medium = you can work around it, "
                                      "low = it can wait.")
    asset_id = SelectField("Affected asset", coerce=optional_int, choices=[], validators=[Optional()],
                           description="One of the devices you hold, if the problem is with it.")
    attachments = MultipleFileField("Attachments", render_kw=ATTACH_KW,
                                    description="Screenshots, logs or documents; up to 10 files.")
    # IT staff only (the view removes them for everybody else):
    requester = StringField("On behalf of", validators=[Optional(), Length(max=64)],
                            render_kw={"autocomplete": "off"},
                            description="The requester's username; leave empty to file it as yourself.")
    asset_tag = StringField("Affected asset (tag)", validators=[Optional(), Length(max=64)],
                            render_kw={"autocomplete": "off"}, description="Any asset, by its tag, e.g. IT-000042.")
    priority = SelectField("Priority", choices=[SelectChoice(ANY, "From impact and urgency"), *PRIORITY_CHOICES],
                           validators=[Optional()])
    submit = SubmitField("File ticket")

    def for_requester(self) -> NewTicketForm:
        """Drop the staff-only fields: an employee's post cannot set them at all."""
        for name in ("requester", "asset_tag", "priority"):
            delattr(self, name)
        return self

    def for_staff(self) -> NewTicketForm:
        delattr(self, "asset_id")
        return self


class ReplyForm(FlaskForm):
    body = TextAreaField("Message", validators=[DataRequired("Write a reply."), Length(max=BODY_MAX)],
                         render_kw={"rows": 5})
    visibility = RadioField("Visible to", default="public", validators=[Optional()],
                            choices=[SelectChoice("public", "Public reply (the requester sees it and gets an email)"),
                                     SelectChoice("internal", "Internal note (IT staff only)")])
    attachments = MultipleFileField("Attachments", render_kw=ATTACH_KW)
    submit = SubmitField("Send")

    @property
    def internal(self) -> bool:
        return self.visibility.data == "internal"


class AssignForm(FlaskForm):
    assignee_id = SelectField("Assignee", coerce=optional_int, choices=[], validators=[Optional()])
    team_id = SelectField("Team", coerce=optional_int, choices=[], validators=[Optional()])
    submit = SubmitField("Assign")


class StatusForm(FlaskForm):
    # Every status is a valid value; whether this ticket may move there is the service's answer.
    status = SelectField("New status", choices=STATUS_CHOICES, validators=[DataRequired()])
    submit = SubmitField("Change status")


class PriorityForm(FlaskForm):
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, validators=[DataRequired()])
    submit = SubmitField("Set priority")


class MergeForm(FlaskForm):
    into = StringField("Merge into ticket number", validators=[DataRequired("Give a ticket number."), ticket_number],
                       render_kw={"inputmode": "numeric", "autocomplete": "off", "placeholder": "e.g. 42"},
                       description="This ticket is closed as a duplicate; its text is copied to the other one.")
    submit = SubmitField("Merge")


class CloseForm(FlaskForm):
    submit = SubmitField("Close my ticket")


class RateForm(FlaskForm):
    rating = RadioField("How well were you helped?", coerce=optional_int,
                        choices=[SelectChoice(n, f"{n} – {label}") for n, label in
                                 ((5, "very well"), (4, "well"), (3, "OK"), (2, "poorly"), (1, "very poorly"))],
                        validators=[InputRequired("Choose a rating from 1 to 5.")])
    comment = TextAreaField("Comment (optional)", validators=[Optional(), Length(max=2000)], render_kw={"rows": 3})
    submit = SubmitField("Send rating")


class BulkAssignForm(FlaskForm):
    """With BulkStatusForm, under the list; the selected tickets are the checkboxes named ticket_id."""
    assignee_id = SelectField("Assign to", coerce=optional_int, choices=[], validators=[Optional()])
    team_id = SelectField("Team", coerce=optional_int, choices=[], validators=[Optional()])
    submit = SubmitField("Assign selected")


class BulkStatusForm(FlaskForm):
    status = SelectField("Set status", choices=STATUS_CHOICES, validators=[DataRequired()])
    submit = SubmitField("Change status of selected")


# --- administrators' settings ---

class TeamForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    email = StringField("Team email", validators=[
        Optional(), Length(max=254), Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Not an email address.")],
                        description="New tickets for the team go here; if empty, to every member.")
    member_ids = SelectMultipleField("Members", coerce=int, choices=[], validators=[Optional()])
    active = BooleanField("Active", default=True)
    submit = SubmitField("Save team")


class CategoryForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    default_team_id = SelectField("Default team", coerce=optional_int, choices=[], validators=[Optional()])
    default_assignee_id = SelectField("Default assignee", coerce=optional_int, choices=[], validators=[Optional()])
    active = BooleanField("Active (offered when filing a ticket)", default=True)
    submit = SubmitField("Save category")


class CannedResponseForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=100)])
    body = TextAreaField("Text", validators=[DataRequired(), Length(max=BODY_MAX)], render_kw={"rows": 8})
    active = BooleanField("Active (offered when replying)", default=True)
    submit = SubmitField("Save canned response")
