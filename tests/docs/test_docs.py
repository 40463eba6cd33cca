"""The documentation site: its generated reference pages are current, and it builds with
`mkdocs build --strict` (a broken link or anchor fails)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_are_current() -> None:
    result = subprocess.run([sys.executable, "scripts/gen_docs.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_names_a_stale_page(tmp_path: Path) -> None:
    gen_docs = _gen_docs()
    gen_docs.DOCS = tmp_path  # an empty docs folder: every page is stale
    assert gen_docs.main(["--check"]) == 1
    assert not list(tmp_path.iterdir())  # --check writes nothing
    assert gen_docs.main([]) == 0
    assert gen_docs.main(["--check"]) == 0
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.md")) == sorted(
        gen_docs.PAGES)


def test_every_generated_page_says_so_and_is_in_the_nav() -> None:
    gen_docs = _gen_docs()
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for relative, make in gen_docs.PAGES.items():
        assert make().startswith(gen_docs.HEADER), relative
        assert f": {relative}" in nav, f"{relative} is not in mkdocs.yml's nav"


def _mkdocs(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec(
            "material") is None:
        message = "mkdocs and mkdocs-material are not installed (pip install -e '.[test]')"
        if os.environ.get("SIA_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # never -q: mkdocs 1.6 then drops the warnings --strict counts
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=config_dir, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, check=False)


def test_site_builds_strict(tmp_path: Path) -> None:
    result = _mkdocs(ROOT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "reference" / "detectors" / "index.html").exists()


@pytest.mark.parametrize("link", ["[a](missing.md)", "[a](reference/detectors.md#missing)",
                                  "[a](../sia/missing.py)"])
def test_a_broken_link_fails_the_build(tmp_path: Path, link: str) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", tmp_path / "scripts")
    (tmp_path / "sia").symlink_to(ROOT / "sia")  # the files pages may link to
    with (tmp_path / "docs" / "concepts.md").open("a", encoding="utf-8") as page:
        page.write(f"\n[fine](../sia/settings.py) {link}\n")
    result = _mkdocs(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "1 warnings in strict mode" in result.stdout + result.stderr
