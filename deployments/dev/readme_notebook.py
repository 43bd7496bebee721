"""``examples/readme.ipynb``: README.md's Python blocks, in order, as the notebook a user would
type them into (the suite runs it with nbclient against ``jobpipes up``'s stack).

    uv run python -m deployments.dev.readme_notebook write   # rewrite it from README.md
    uv run python -m deployments.dev.readme_notebook check   # exit 1 when it differs

``tests/unit/test_readme_notebook.py`` fails when the committed notebook differs.
"""

from __future__ import annotations

import json
import re
import sys

from core.config import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
NOTEBOOK = PROJECT_ROOT / "examples" / "readme.ipynb"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_HEADING = re.compile(r"^(#{2,3}) (.+)$", re.M)


def python_blocks(readme: str) -> list[tuple[str, str]]:
    """(the heading it is under, the code) of every Python block of ``readme``, in order."""
    found = []
    for match in _BLOCK.finditer(readme):
        headings = _HEADING.findall(readme[:match.start()])
        found.append((headings[-1][1] if headings else "", match.group(1).rstrip("\n")))
    return found


def _cell(kind: str, text: str) -> dict[str, object]:
    cell: dict[str, object] = {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
    if kind == "code":
        cell |= {"execution_count": None, "outputs": []}
    return cell


def notebook(readme: str) -> str:
    cells = [_cell("markdown", "# The README's Python examples\n\nWritten from README.md by "
                   "`uv run python -m deployments.dev.readme_notebook write`: edit the README, not this.\n"
                   "Start the stack first (`uv run jobpipes up`), then Jupyter from a shell that ran\n"
                   "`eval \"$(uv run jobpipes env)\"`.")]
    section = None
    for heading, code in python_blocks(readme):
        if heading != section:
            cells.append(_cell("markdown", f"## {heading}"))
            section = heading
        cells.append(_cell("code", code))
    for i, cell in enumerate(cells):
        cell["id"] = f"readme-{i:02d}"
    document = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                            "name": "python3"},
                                             "language_info": {"name": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document, indent=1) + "\n"


def main(argv: list[str]) -> int:
    wanted = notebook(README.read_text())
    if argv[:1] == ["write"]:
        NOTEBOOK.parent.mkdir(exist_ok=True)
        NOTEBOOK.write_text(wanted)
        return 0
    if argv[:1] == ["check"]:
        if not NOTEBOOK.exists() or NOTEBOOK.read_text() != wanted:
            print(f"{NOTEBOOK} differs from README.md: python -m deployments.dev.readme_notebook write",
                  file=sys.stderr)
            return 1
        return 0
    print("usage: python -m deployments.dev.readme_notebook write|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
