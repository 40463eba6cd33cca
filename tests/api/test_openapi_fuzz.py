"""Schemathesis against the live OpenAPI description of a real server: whatever it
generates from the description (valid and invalid input), the server never answers 5xx,
and every answer's status, content type and body are ones the description promises."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .conftest import serving

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def test_the_live_api_keeps_its_description_under_fuzzing(tmp_path: Path) -> None:
    st = shutil.which("st") or shutil.which("schemathesis")
    assert st, "schemathesis is a test dependency: pip install -e '.[test]'"
    with serving(tmp_path / "data") as server:
        report = tmp_path / "report.json"
        result = subprocess.run(
            [st, "run", f"{server.url}/openapi.json", "--checks", CHECKS,
             "--header", f"Authorization: Bearer {server.keys['admin']}",
             "--max-examples", "40", "--seed", "20261206", "--workers", "1",
             "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
             "--request-timeout", "30", "--no-color", "--report", "json",
             "--report-json-path", str(report)],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = json.loads(report.read_text()) if report.exists() else {}
    assert "operations" not in summary or summary["operations"], summary
