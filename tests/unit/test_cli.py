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


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_says_what_each_command_does(capsys):
    out = _help(["--help"], capsys)
    for name in cli.COMMANDS:
        [line] = [line for line in out.splitlines() if line.split()[:1] == [name]]
        assert len(line.split()) >= 3, f"{name!r} has no description: {line!r}"


def test_dashboard_help_is_short_and_starts_no_server(capsys, monkeypatch):
    monkeypatch.setattr(cli.subprocess, "call", lambda *a, **k: pytest.fail("started streamlit"))
    out = _help(["dashboard", "--help"], capsys)
    assert out.startswith("usage: diffad dashboard") and len(out.splitlines()) < 25
    assert "streamlit run --help" in out


def _options_without_help(text: str) -> list[str]:
    """Option lines of an argparse help with nothing after the option (no help text)."""
    lines = text.split("options:", 1)[-1].splitlines()
    missing = []
    for i, line in enumerate(lines):
        if not line.startswith("  -"):
            continue
        words = line.strip().split("  ")  # option (and metavar), then the help after 2+ spaces
        continued = i + 1 < len(lines) and lines[i + 1].startswith(" " * 8)
        if len([w for w in words if w.strip()]) < 2 and not continued:
            missing.append(line.strip())
    return missing


@pytest.mark.parametrize("command", sorted(set(cli.COMMANDS) - {"dashboard"}))
def test_each_command_help_names_itself_and_explains_every_option(command, capsys):
    out = _help([command, "--help"], capsys)
    assert out.startswith(f"usage: diffad {command} "), out.splitlines()[0]
    assert _options_without_help(out) == []
