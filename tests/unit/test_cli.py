"""The `diffad` console script dispatches to the stage scripts and reports user errors cleanly."""

import pytest

from diffad import cli


def test_every_dvc_stage_has_a_subcommand_and_script():
    import importlib

    for stage in cli.STAGES:
        assert stage.replace("_", "-") in cli.COMMANDS
        module = importlib.util.find_spec(f"stages.{stage}")
        assert module is not None, f"stages/{stage}.py is missing"


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["trian-ddim"])
    assert exc.value.code == 2
    assert "unknown command 'trian-ddim'" in capsys.readouterr().err


def test_config_error_is_one_line_without_traceback(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  resolution: sixty-four\n")
    with pytest.raises(SystemExit) as exc:
        cli.main(["convert-dataset", "--params", str(params), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "data.resolution" in err and "Traceback" not in err
