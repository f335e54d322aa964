"""Griffe extension: our docstrings' ``Example:`` section is Google style's ``Examples:``.

Griffe reads ``Examples:`` (plural) as doctest code; the package writes
``Example:`` (see STYLE), so the examples would otherwise render as text and
their outputs (``[['dress', 'red']]``) as broken reference links.
"""

import re

import griffe

_SECTION = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _SECTION.sub(r"\1Examples:", obj.docstring.value)
