"""``leadflow rulebook``: validate a file, print the default."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from services.scoring.cli import cli
from services.scoring.rulebooks import default_source
from services.scoring.tests.builders import document

runner = CliRunner()


def test_a_valid_rulebook(tmp_path: Path) -> None:
    path = tmp_path / "rulebook.json"
    path.write_text(json.dumps(document()))
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "rulebook 'test' is valid: 0 fit rules, 0 engagement rules" in result.output


def test_problems_are_printed_with_their_paths(tmp_path: Path) -> None:
    path = tmp_path / "rulebook.yaml"
    path.write_text(default_source().replace("field: company.vertical", "field: company.sector"))
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}: fit.rules.1.when.field: rule 'target_vertical': no lead field" in (
        result.output
    )


def test_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_the_default_is_printed() -> None:
    result = runner.invoke(cli, ["default"])
    assert result.exit_code == 0
    assert result.output == default_source()
