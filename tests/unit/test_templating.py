"""The fast form-rendering helpers give the same bytes as WTForms' own."""
from __future__ import annotations

import importlib.util

import pytest
import wtforms.widgets.core
from markupsafe import Markup
from wtforms import Form, SelectField
from wtforms.fields.choices import SelectChoice

from itops.core.templating import fast_html_params, select_options


def _wtforms_html_params():
    """WTForms' own html_params, from a fresh copy of its module (the app may have replaced the shared one)."""
    spec = importlib.util.spec_from_file_location("_wtforms_widgets_core_copy", wtforms.widgets.core.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.html_params


@pytest.mark.parametrize("params", [
    {"name": "q", "id": "q", "class_": "form-control", "type": "search", "value": "", "maxlength": 500},
    {"value": 'say "hi" <b>&', "data_select_all": True, "aria_label": "x'y", "hidden": True, "disabled": False},
    {"value": Markup('already "safe" <i>'), "for_": "z", "class__": "c", "required": True},
    {"value": None, "rows": 5, "placeholder": "e.g. 42"},
])
def test_fast_html_params_matches_wtforms(params):
    expected = _wtforms_html_params()(**params)
    assert fast_html_params(**params) == expected
    assert isinstance(fast_html_params(**params), Markup)


def test_select_options_escapes_and_marks_the_selected_choice():
    class F(Form):
        pick = SelectField(choices=[SelectChoice("", "Any"), SelectChoice("a&b", "<A>"), SelectChoice("c", 'C "c"')])

    form = F(data={"pick": "a&b"})
    expected = ('<option value="">Any</option><option value="a&amp;b" selected>&lt;A&gt;</option>'
                '<option value="c">C &#34;c&#34;</option>')
    assert select_options(form.pick) == expected
    assert select_options(form.pick) == expected  # from the cache
