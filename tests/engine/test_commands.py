"""validateworkflow and importworkflows, as a user runs them."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from engine.models import Workflow

VALID = "name: good\nsteps:\n  a: {uses: noop}\n"
BROKEN = "name: bad\nsteps:\n  a: {uses: noop, neds: [b]}\n"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(BROKEN)
    (tmp_path / "notes.txt").write_text("not a workflow")
    return tmp_path


def test_validateworkflow_returns_normally_when_every_file_is_valid(folder, capsys):
    call_command("validateworkflow", str(folder / "good.yaml"))

    assert "1 file(s) valid" in capsys.readouterr().out


def test_validateworkflow_prints_each_problem_with_its_position_and_exits_1(folder, capsys):
    with pytest.raises(SystemExit) as caught:
        call_command("validateworkflow", str(folder))
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert f"{folder / 'bad.yaml'}:3:" in err
    assert "neds" in err and "needs" in err


def test_validateworkflow_json_lists_problems_as_objects(folder, capsys):
    with pytest.raises(SystemExit):
        call_command("validateworkflow", "--json", str(folder / "bad.yaml"))
    problems = json.loads(capsys.readouterr().out)
    assert problems and set(problems[0]) == {"file", "line", "column", "path", "message"}
    assert problems[0]["line"] == 3


@pytest.mark.django_db
def test_importworkflows_stores_the_valid_files_and_exits_1_for_the_invalid(folder, capsys):
    with pytest.raises(SystemExit) as caught:
        call_command("importworkflows", str(folder))

    assert caught.value.code == 1
    assert list(Workflow.objects.values_list("name", flat=True)) == ["good"]
    out = capsys.readouterr()
    assert "good v1 (new version)" in out.out
    assert "1 imported, 1 invalid" in out.out
    assert "bad.yaml: invalid" in out.err


@pytest.mark.django_db
def test_importing_the_examples_twice_stores_nothing_new(workflows_dir, capsys):
    call_command("importworkflows", str(workflows_dir))
    count = Workflow.objects.count()
    call_command("importworkflows", str(workflows_dir))

    assert count >= 6
    assert capsys.readouterr().out.count("(unchanged)") == count
