"""Cheaper building blocks for HTML that every page renders: form field attributes and <select> options.

WTForms renders each attribute through `Markup.format`, which runs Python's string.Formatter and costs
several microseconds per attribute (a list page renders ~50 of them); `fast_html_params` gives the same
bytes with plain f-strings and markupsafe's C escape. `select_options` writes a <select>'s options and
keeps the result for choices seen before (the same staff, teams and categories on every request).
"""
from __future__ import annotations

from markupsafe import Markup, escape
from wtforms.widgets.core import clean_key


def fast_html_params(**kwargs) -> Markup:
    """wtforms.widgets.html_params, byte for byte: keys sorted, True bare, False left out, values escaped
    with any raw double quote (from Markup values) written as &quot;."""
    params = []
    for key, value in sorted(kwargs.items()):
        if value is False:
            continue
        key = escape(clean_key(key))
        if value is True:
            params.append(key)
        else:
            params.append(f'{key}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))


def install_fast_html_params() -> None:
    """Point WTForms' widgets at fast_html_params (idempotent; called by the app factory, not at import)."""
    import wtforms.widgets
    import wtforms.widgets.core as core

    core.html_params = wtforms.widgets.html_params = fast_html_params  # Select, TextArea, Label, ...
    for widget in (core.Input, core.Button):  # they hold it as a staticmethod of their own
        widget.html_params = staticmethod(fast_html_params)


_OPTIONS_CACHE: dict[tuple, str] = {}
_OPTIONS_CACHE_SIZE = 256


def select_options(field) -> Markup:
    """The <option>s of a WTForms select field, as the _macros.html `select` macro writes them."""
    choices = tuple((choice.value, choice.label, bool(choice.selected)) for choice in field.iter_choices())
    html = _OPTIONS_CACHE.get(choices)
    if html is None:
        html = "".join(f'<option value="{escape(value)}"{" selected" if selected else ""}>{escape(label)}</option>'
                       for value, label, selected in choices)
        if len(_OPTIONS_CACHE) >= _OPTIONS_CACHE_SIZE:  # filters with many values: keep memory bounded
            _OPTIONS_CACHE.clear()
        _OPTIONS_CACHE[choices] = html
    return Markup(html)
