"""Sign-in and token forms (Flask-WTF: CSRF-protected, accessible, work without JavaScript)."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Sign in")


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=100)],
                       description="What the token is for, e.g. 'inventory script on build host'.")
    submit = SubmitField("Create token")


class ConfirmForm(FlaskForm):
    """A bare form for POST buttons (sign out, revoke): carries the CSRF token and nothing else."""
    submit = SubmitField("Confirm")

