"""MkDocs hook: the command-line reference page is written from the argument parser itself.

``docs/cli_reference.md`` holds a marker; at build time it is replaced by
``--help`` of every sub-command, so the page cannot drift from the code.
"""

import contextlib
import io
import os
import sys

MARKER = "<!-- cli-reference -->"


def _help(parser):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        parser.print_help()
    return out.getvalue()


def reference():
    """Markdown: the top-level help, then one section per sub-command."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    os.environ.setdefault("COLUMNS", "100")
    from multilabel_keras.cli_parser import build_parser

    parser = build_parser()
    parts = ["```text", _help(parser).rstrip(), "```"]
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in commands.choices.items():
        parts += ["", f"## `multilabel-keras {name}`", "", "```text", _help(sub).rstrip(), "```"]
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):
    if MARKER in markdown:
        return markdown.replace(MARKER, reference())
    return markdown
