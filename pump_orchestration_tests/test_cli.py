"""The command line entry point, run as a user would (a subprocess with its own environment)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import argparse

import pytest
import sqlalchemy as sa

from pump_orchestration.cli import build_parser
from pump_orchestration.testing.dagster_servers import REPO, dagster_home

CLI = str(Path(sys.executable).parent / "pump-orchestration")
TRADES_CSV = REPO.parent / "shared" / "realdata" / "pumpfun_trades" / "trades_data.csv"


def _call(args, env):
    # The local deployment (embedded warehouse), whatever the caller's environment says.
    base = {k: v for k, v in os.environ.items() if k not in ("DB_DSN", "PUMP_DEPLOYMENT", "DAGSTER_HOME")}
    return subprocess.run([CLI, *args], cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=600)


def _run(args, env):
    out = _call(args, env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_generate_then_demo_on_the_embedded_warehouse(tmp_path):
    env = {"PUMP_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(dagster_home(tmp_path / "home"))}
    summary = json.loads(_run(["generate", "--coins", "30", "--hours", "2", "--start", "2025-09-03T00:00:00Z",
                               "--pumps-csv", str(tmp_path / "pumps.csv")], env))
    assert summary["coins"] == 30 and summary["rows_written"] == summary["rows"] > 0
    assert (tmp_path / "pumps.csv").read_text().startswith("mint,pump_start")
    again = json.loads(_run(["generate", "--coins", "30", "--hours", "2", "--start", "2025-09-03T00:00:00Z"], env))
    assert again["rows_written"] == 0  # re-running the same generation inserts nothing twice

    out = _call(["demo", "--coins", "150", "--name", "first"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"model_name": "first"' in out.stdout and "succeeded" in out.stdout
    shown = json.loads(out.stdout[out.stdout.index("{"): out.stdout.rindex("}") + 1])
    # The operating point chosen at training, with pumps caught / false alarms there, beside the rule's.
    caught = shown["cv_events_at_alert_threshold"]
    assert 0 < shown["alert_threshold"] < 1 and 0 <= caught["caught_before_peak"] <= caught["pumps"] > 0
    assert shown["rule_baseline_cv_events"]["pumps"] == caught["pumps"]
    assert isinstance(shown["beats_rule_baseline"], bool)
    assert " DEBUG " not in out.stdout + out.stderr and "Warning" not in out.stdout + out.stderr
    # Exactly one way to open the UI is printed.
    assert [line.strip() for line in out.stdout.splitlines() if "dagster dev" in line] == [
        "DAGSTER_HOME=$PWD .venv/bin/dagster dev -w workspace.yaml"]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select status, alert_threshold from ml_models where name = 'first'")).one() == (
            "READY", shown["alert_threshold"])
        # Mirrored without a daemon: the run's ml_jobs row has ended.
        assert conn.execute(sa.text("select status, progress from ml_jobs")).all() == [("COMPLETED", 1.0)]
    again = _call(["demo", "--coins", "150", "--name", "first"], env)
    assert (again.returncode, again.stderr) == (
        2, "pump-orchestration: --name: a model named 'first' already exists; choose another name\n")
    # The demo's run is recorded in DAGSTER_HOME, so the UI shows it.
    assert any((tmp_path / "home").rglob("*.db"))


def test_import_trades_command(tmp_path):
    if not TRADES_CSV.exists():
        import pytest

        pytest.skip(f"real trades absent: {TRADES_CSV}")
    summary = json.loads(_run(["import-trades", str(TRADES_CSV), "--interval", "10"],
                              {"PUMP_DATA_DIR": str(tmp_path / "data")}))
    assert summary["coins"] == 5 and summary["rows_written"] == summary["rows"]


def test_a_deployment_mistake_is_one_line_naming_the_variable(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in ("DB_DSN", "PUMP_DEPLOYMENT")}
    out = subprocess.run([CLI, "init-db"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**base, "PUMP_DEPLOYMENT": "production", "PUMP_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 2
    assert out.stderr.splitlines() == ["pump-orchestration: DB_DSN: PUMP_DEPLOYMENT=production needs the warehouse "
                                       "URL, e.g. DB_DSN=postgresql://user:password@host:5432/crypto"]
    assert not (tmp_path / "data").exists()  # nothing written


def _refused(args, env, tmp_path):
    """Run a command that must be refused: exit code 2, one line on stderr, no traceback, nothing written."""
    out = _call(args, {"PUMP_DATA_DIR": str(tmp_path / "data"), **env})
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "data").exists()
    return out.stderr.strip()


def test_demo_refuses_before_writing(tmp_path):
    home = {"DAGSTER_HOME": str(dagster_home(tmp_path / "home"))}
    assert _refused(["demo", "--day", "2030-01-01"], home, tmp_path).startswith(
        "pump-orchestration: --day: '2030-01-01' is not a training day; choose a finished UTC day (YYYY-MM-DD) "
        "from 2025-09-01 to ")
    assert "--day: '1st of September'" in _refused(["demo", "--day", "1st of September"], home, tmp_path)
    assert _refused(["demo"], {}, tmp_path).startswith("pump-orchestration: DAGSTER_HOME is not set")
    assert "--model-type: unknown 'svm'" in _refused(["demo", "--model-type", "svm"], home, tmp_path)


def test_bad_options_are_one_line_naming_them(tmp_path):
    assert _refused(["generate", "--coins", "0"], {}, tmp_path) == (
        "pump-orchestration generate: argument --coins: must be > 0, got 0 (--help shows the options)")
    assert "argument --hours: invalid float value: 'soon'" in _refused(["generate", "--hours", "soon"], {}, tmp_path)
    assert "argument --start: not an ISO timestamp: 'tomorrow'" in _refused(
        ["generate", "--start", "tomorrow"], {}, tmp_path)
    assert "argument --pump-share: must be between 0 and 1" in _refused(
        ["generate", "--pump-share", "2"], {}, tmp_path)
    assert _refused(["import-trades", "missing.csv"], {}, tmp_path) == (
        "pump-orchestration: path: no such file: missing.csv")


def test_debug_shows_the_traceback(tmp_path):
    out = _call(["--debug", "import-trades", "missing.csv"], {"PUMP_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 1 and "Traceback" in out.stderr and "UsageError: path: no such file" in out.stderr


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {where}", a) for where, a in _options(sub))
        elif not isinstance(action, argparse._HelpAction):
            yield action.dest, action


def test_every_option_has_help_without_markup():
    options = list(_options(build_parser()))
    assert len(options) > 20
    missing = [where for where, action in options if not action.help]
    assert not missing, f"options without --help text: {missing}"
    texts = [build_parser().format_help()] + [action.help for _, action in options]
    assert not [t for t in texts if "``" in t or ":func:" in t], "RST markup in help text"


@pytest.mark.parametrize("field", ["name", "label_mode", "features", "train_start"])
def test_launchpad_descriptions_have_no_markup(field):
    from pump_orchestration.defs.training.resources import TrainingRequestResource

    description = TrainingRequestResource.model_fields[field].description
    assert description and "``" not in description
    assert "``" not in (TrainingRequestResource.__doc__ or "")


def test_demo_reports_why_its_run_failed(tmp_path):
    # Two coins without a planted pump: every label is 0, so training refuses the data.
    env = {"PUMP_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(dagster_home(tmp_path / "home"))}
    out = _call(["demo", "--coins", "2", "--name", "tiny"], env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "Stack Trace" not in out.stderr
    reason = "labelled rows are class 0 — widen the window or lower min_percent_change"
    assert re.search(rf"^pump-orchestration: training run [0-9a-f-]+ failed: all \d+ {reason}", out.stderr, re.M)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        status, error = conn.execute(sa.text("select status, error_msg from ml_jobs")).one()
    assert status == "FAILED" and reason in error


def test_import_events_is_idempotent_and_refuses_a_bad_file_before_writing(tmp_path):
    env = {"PUMP_DATA_DIR": str(tmp_path / "data")}
    good = tmp_path / "signals.csv"
    good.write_text("mint,symbol,start_time,duration_minutes,note\n"
                    "m1,PUMP,2025-09-01T16:00:00Z,10,channel A\n"
                    "m2,,2025-09-01 17:30,5,\n")
    first = json.loads(_run(["import-events", str(good)], env))
    assert (first["events"], first["new"], first["replaced"], first["coins"]) == (2, 2, 0, 2)
    again = json.loads(_run(["import-events", str(good)], env))
    assert (again["new"], again["replaced"]) == (0, 2)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select mint, symbol, source, note from ml_known_events order by mint")).all()
    assert rows == [("m1", "PUMP", "signals.csv", "channel A"), ("m2", None, "signals.csv", None)]

    bad = tmp_path / "bad.csv"
    bad.write_text("mint,start_time,end_time\nm3,2025-09-02T10:00:00Z,2025-09-02T10:05:00Z\n"
                   "m4,yesterday,2025-09-02T10:05:00Z\n")
    out = _call(["import-events", str(bad)], env)
    assert (out.returncode, out.stderr) == (
        2, "pump-orchestration: bad.csv, line 3: start_time 'yesterday' is not an ISO timestamp\n")
    with engine.connect() as conn:  # the good row m3 of the bad file was not written either
        assert conn.execute(sa.text("select count(*) from ml_known_events")).scalar() == 2
