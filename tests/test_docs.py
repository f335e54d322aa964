"""The documentation site builds strictly, and its generated pages match the code.

``mkdocs build --strict`` fails on a broken link, a missing page or a
docstring reference that does not resolve; the command-line reference is
compared with the parser's own sub-commands and flags.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_the_site_builds_strictly_with_the_parsers_help_and_the_docstrings(tmp_path):
    from multilabel_keras.cli_parser import build_parser

    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "cli_reference" / "index.html").read_text(encoding="utf-8")
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in commands.choices.items():
        assert f"multilabel-keras {name}" in page
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in page, f"{name} {flag} missing from the generated reference"
    api = (tmp_path / "site" / "api" / "training" / "index.html").read_text(encoding="utf-8")
    from multilabel_keras.training.image import train

    first_line = train.__doc__.strip().splitlines()[0]
    assert first_line.split(":")[0] in api
