"""MkDocs hooks (mkdocs.yml `hooks:`): links from docs/ to the repository's own files.

A page may link to a source file outside docs/ (`[sia/settings.py](../sia/settings.py)`),
which works on GitHub but is outside the site. Such a link to a file that exists is made
a link to the file on `repo_url` (mkdocs.yml), or, with no `repo_url`, its text alone;
a link to a file that does not exist is left as it is, so `mkdocs build --strict` still
fails on it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

LINK = re.compile(r"\[([^\]\n]+)\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs = Path(os.path.abspath(config["docs_dir"]))
    root = docs.parent
    here = (docs / page.file.src_path).parent
    repo = (config.get("repo_url") or "").rstrip("/")

    def replace(match: re.Match[str]) -> str:
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        path = Path(os.path.normpath(here / target))  # "..", without following links
        if docs in path.parents or root not in path.parents or not path.exists():
            return match.group(0)
        relative = path.relative_to(root).as_posix()
        if repo:
            return f"[{text}]({repo}/blob/main/{relative}{anchor})"
        return text

    return LINK.sub(replace, markdown)
