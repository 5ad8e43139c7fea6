"""MkDocs hooks for the modelwire site (see mkdocs.yml).

The pages under docs/ are also read on GitHub, where a link such as
``../plugins/modelwire-tiktoken/README.md`` opens a file of the repository.
On the built site there is no such file, and ``mkdocs build --strict`` would
fail on it. This hook rewrites those links: to ``repo_url`` when the config
sets one, else to the link text followed by the repository path in code.

The code's docstrings use Sphinx roles (``:class:`Runtime```), which
mkdocstrings renders as Markdown; the role prefix is dropped from the HTML.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

_LINK = re.compile(
    r"(?<!!)\[(?P<text>[^\]\n]+)\]\((?P<target>\.\./[^)\s#]+)(?P<anchor>#[^)\s]*)?\)"
)
_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj|const):(?=<code>)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def _rewrite(markdown: str, page_dir: str, repo_url: str | None) -> str:
    def link(match: re.Match[str]) -> str:
        path = posixpath.normpath(posixpath.join("docs", page_dir, match["target"]))
        if path.startswith(("docs/", "../")) or path == "docs":
            return match[0]  # inside the docs (mkdocs checks it) or outside the repository
        if repo_url:
            return (
                f"[{match['text']}]({repo_url.rstrip('/')}/blob/HEAD/{path}{match['anchor'] or ''})"
            )
        return f"{match['text']} (`{path}` in the repository)"

    # Leave fenced code alone: only prose links are rewritten.
    out, last = [], 0
    for fence in _FENCE.finditer(markdown):
        out.append(_LINK.sub(link, markdown[last : fence.start()]))
        out.append(fence[0])
        last = fence.end()
    out.append(_LINK.sub(link, markdown[last:]))
    return "".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    page_dir = posixpath.dirname(page.file.src_uri)
    return _rewrite(markdown, page_dir, config.get("repo_url"))


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _ROLE.sub("", html)
