"""The CI skip guard in tests/conftest.py: under BENCH_CI=1 a skip not in ALLOWED_SKIPS fails the session.

Each case runs pytest in a subprocess on a tiny test file beside a copy of tests/conftest.py (with one allowed
reason appended to its ALLOWED_SKIPS, since the real list may be empty).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

TESTS = '''
import pytest

def test_runs():
    pass

def test_skipped_for_a_bad_reason():
    pytest.skip("the frobnicator is not installed")

@pytest.mark.skipif(True, reason="fine on CI")
def test_skipped_for_an_allowed_reason():
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False
'''


def _pytest(tmp_path: Path, files: dict[str, str], ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        CONFTEST.read_text() + '\nALLOWED_SKIPS = (("fine on CI", "the hook test allows it"),)\n')
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "BENCH_CI"}
    if ci:
        env["BENCH_CI"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_unexpected_skip_passes_without_ci(tmp_path):
    res = _pytest(tmp_path, {"test_tiny.py": TESTS}, ci=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "unexpected skips" not in res.stdout


def test_unexpected_skip_fails_under_ci_and_is_named(tmp_path):
    res = _pytest(tmp_path, {"test_tiny.py": TESTS}, ci=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "unexpected skips (BENCH_CI=1)" in res.stdout
    assert "test_tiny.py::test_skipped_for_a_bad_reason: the frobnicator is not installed" in res.stdout
    assert "test_skipped_for_an_allowed_reason" not in res.stdout.split("unexpected skips")[1]
    assert "1 skipped test(s) that CI must run" in res.stdout


def test_allowed_skips_and_xfails_pass_under_ci(tmp_path):
    allowed_only = TESTS.replace('pytest.skip("the frobnicator is not installed")', "pass")
    res = _pytest(tmp_path, {"test_tiny.py": allowed_only}, ci=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 skipped" in res.stdout and "1 xfailed" in res.stdout


def test_module_level_skip_fails_under_ci(tmp_path):
    files = {"test_mod.py": 'import pytest\npytest.importorskip("no_such_module_anywhere")\n',
             "test_ok.py": "def test_ok():\n    pass\n"}
    res = _pytest(tmp_path, files, ci=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "test_mod.py: could not import 'no_such_module_anywhere'" in res.stdout


@pytest.mark.parametrize("line", ["BENCH_CI=1 python -m pytest", "apt-get install -y -qq chromium"])
def test_ci_script_sets_the_guard_and_installs_chromium(line):
    assert line in (Path(__file__).parents[1] / ".ci" / "run").read_text()
