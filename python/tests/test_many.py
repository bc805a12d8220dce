"""compare, phase, sweep and check_suite equal the CLI for the same
arguments: the DataFrames are pd.read_csv of its CSV, the files it writes
(sweep results and summaries, golden outputs) are byte-identical, and the
reports are its text."""

import io
import json
import pathlib

import pandas as pd
import pytest

import varprop

SMALL = ["--width", "16", "--depth", "5", "--batch", "4", "--networks", "2"]
SMALL_KW = dict(width=16, depth=5, batch=4, networks=2, progress=False)


@pytest.mark.parametrize(
    "flags,kwargs",
    [
        (["--inits", "xavier-normal,he-normal"],
         dict(inits=["xavier-normal", "he-normal"])),
        (["--acts", "relu,tanh", "--sigma-w2s", "1,2.5", "--sigma-b2", "0.05"],
         dict(acts="relu,tanh", sigma_w2s=[1, 2.5], sigma_b2=0.05)),
    ],
    ids=["inits", "acts-sigma-w2s"],
)
def test_compare_equals_cli(cli, flags, kwargs):
    text = cli("compare", "--format", "csv", "-q", *SMALL, *flags)
    df = varprop.compare(**SMALL_KW, **kwargs)
    pd.testing.assert_frame_equal(df, pd.read_csv(io.StringIO(text)), check_exact=True)
    assert df.columns[0] == "scheme"
    doc = json.loads(cli("compare", "--format", "json", "-q", *SMALL, *flags))
    assert df.attrs["schemes"] == doc["schemes"]


def test_compare_errors_name_the_keyword():
    with pytest.raises(ValueError, match="^inits"):
        varprop.compare(inits=["he-normal", "kaiming-magic"], **SMALL_KW)
    with pytest.raises(ValueError, match="^inits"):
        varprop.compare(**SMALL_KW)
    with pytest.raises(ValueError, match="^init"):
        varprop.compare(inits=["he-normal"], init="xavier-normal", **SMALL_KW)
    with pytest.raises(TypeError, match="sigma_w2s"):
        varprop.compare(sigma_w2s=["x"], **SMALL_KW)
    with pytest.raises(TypeError):
        varprop.compare(inits=["he-normal"], per_network=True, **SMALL_KW)
    with pytest.raises(TypeError):
        varprop.compare(inits=["he-normal"], widht=3)


def test_phase_equals_cli(cli):
    text = cli("phase", "--format", "csv", "-q", "--act", "tanh", *SMALL,
               "--sigma-w2-range", "1:2:2", "--sigma-b2-range", "0:0.1:2")
    df = varprop.phase(act="tanh", sigma_w2_range=(1, 2, 2), sigma_b2_range="0:0.1:2",
                       **SMALL_KW)
    pd.testing.assert_frame_equal(df, pd.read_csv(io.StringIO(text)), check_exact=True)
    assert len(df) == 4 and df.attrs["act"] == "tanh" and df.attrs["depth"] == 5
    with pytest.raises(ValueError, match="^sigma_w2_range"):
        varprop.phase(sigma_w2_range="2:1:3", **SMALL_KW)
    with pytest.raises(ValueError, match="^sigma_w2"):
        varprop.phase(sigma_w2=1.0, **SMALL_KW)


SWEEP = """width = 8
depth = 3
batch = 4
networks = 2
[grid]
init = ["xavier-normal", "he-normal"]
sigma-b2 = [0.0, 0.05]
"""


def _files(d: pathlib.Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if not p.name.startswith(".")}


def test_sweep_equals_cli_and_resumes(cli, tmp_path):
    file = tmp_path / "grid.toml"
    file.write_text(SWEEP)
    cli("sweep", str(file), "--out-dir", str(tmp_path / "cli"), "-q")
    df = varprop.sweep(file, tmp_path / "py", progress=False)
    assert _files(tmp_path / "py") == _files(tmp_path / "cli")
    pd.testing.assert_frame_equal(df, pd.read_csv(tmp_path / "cli" / "summary.csv"),
                                  check_exact=True)
    assert len(df) == 4 and df.attrs["computed"] == 4 and df.attrs["skipped"] == 0
    # resumable: what is there is not computed again, what is missing is
    first = tmp_path / "py" / f"{df['id'][0]}.json"
    first.unlink()
    again = varprop.sweep(str(file), str(tmp_path / "py"), progress=False)
    assert again.attrs["computed"] == 1 and again.attrs["skipped"] == 3
    assert _files(tmp_path / "py") == _files(tmp_path / "cli")
    pd.testing.assert_frame_equal(again, df, check_exact=True)


def test_sweep_shard_equals_cli(cli, tmp_path):
    file = tmp_path / "grid.toml"
    file.write_text(SWEEP)
    cli("sweep", str(file), "--out-dir", str(tmp_path / "cli"), "--shard", "1/3", "-q")
    df = varprop.sweep(file, tmp_path / "py", shard=(1, 3), progress=False)
    assert _files(tmp_path / "py") == _files(tmp_path / "cli")
    assert "summary-shard-1-of-3.csv" in _files(tmp_path / "py")
    assert len(df) == 1
    with pytest.raises(ValueError, match="^shard"):
        varprop.sweep(file, tmp_path / "py", shard="3/3", progress=False)


SUITE = """max-z = 7.5

[[case]]
name = "tanh"
width = 64
depth = 6
batch = 8
act = "tanh"
sigma-w2 = 1.5
sigma-b2 = 0.05
engine = "dense"

[[case]]
name = "relu"
width = 32
depth = 4
batch = 8
init = "he-normal"
"""


def test_check_suite_golden_round_trip(cli, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    cli_dir, py_dir = tmp_path / "golden-cli", tmp_path / "golden-py"
    cli("check", "--config", str(suite), "--golden", str(cli_dir), "--bless", "-q")
    blessed = varprop.check_suite(suite, golden=py_dir, bless=True, progress=False)
    assert blessed.passed and len(blessed) == 2
    assert [c.name for c in blessed] == ["tanh", "relu"]
    assert blessed["tanh"].golden["written"] == str(py_dir / "tanh.json")
    # the golden files are the CLI's, byte for byte
    assert _files(py_dir) == _files(cli_dir) and len(_files(py_dir)) == 2

    # checking against them passes, with the CLI's report
    checked = varprop.check_suite(str(suite), golden=str(cli_dir), progress=False)
    assert checked and all(c.golden["comparisons"] > 0 for c in checked)
    assert len(checked["tanh"].table) > 0
    assert checked.report == cli("check", "--config", str(suite), "--golden", str(cli_dir),
                                 "-q")
    assert checked.report_json == json.loads(cli(
        "check", "--config", str(suite), "--golden", str(cli_dir), "-q", "--format", "json"))

    # a changed theory fails (the theory comparison), as the CLI says
    wrong = varprop.check_suite(suite, theory_sigma_w2=2.5, progress=False)
    assert not wrong and not wrong["tanh"].passed and len(wrong["tanh"].failures) > 0
    # (the hidden CLI flag: a nonzero exit, so compare the report by hand)
    import subprocess

    from conftest import _binary

    done = subprocess.run([str(_binary()), "check", "--config", str(suite), "-q",
                           "--theory-sigma-w2", "2.5"], capture_output=True, text=True)
    assert done.returncode == 1 and wrong.report == done.stdout

    # a changed network moves away from the golden output
    moved = varprop.check_suite(suite, golden=cli_dir, q0=3.0, progress=False)
    assert not moved
    assert any(len(c.golden["failures"]) > 0 for c in moved)
    assert "moved from the golden output" in moved.report


def test_check_suite_from_a_dict_and_errors(tmp_path):
    cases = [dict(name="small", width=16, depth=3, batch=4, networks=4)]
    by_list = varprop.check_suite(cases, progress=False)
    by_dict = varprop.check_suite({"case": cases}, progress=False)
    assert by_list.report == by_dict.report and by_list["small"].passed
    with pytest.raises(ValueError, match="case 'small'"):
        varprop.check_suite([dict(cases[0], width=0)], progress=False)
    with pytest.raises(ValueError, match="widht"):
        varprop.check_suite([dict(widht=3)], progress=False)
    with pytest.raises(ValueError, match="^bless"):
        varprop.check_suite(cases, bless=True, progress=False)
    with pytest.raises(ValueError, match="golden"):
        varprop.check_suite(cases, golden=tmp_path / "none", progress=False)


def test_simulator_methods_share_the_context():
    sim = varprop.Simulator()
    df = sim.compare(inits=["he-normal"], **SMALL_KW)
    assert sim.has_context and df["scheme"].unique().tolist() == ["he-normal"]
    assert len(sim.phase(sigma_w2_range=2.0, sigma_b2_range=0.0, **SMALL_KW)) == 1
    with pytest.raises(TypeError):
        sim.compare(inits=["he-normal"], device="cpu")


def test_check_suite_refuses_unnamed_unsafe_and_repeated_names(tmp_path):
    import pytest

    for body, said in [
        ('[[case]]\nwidth = 16\n', "has no name"),
        ('[[case]]\nname = "../up"\nwidth = 16\n', "not a usable case name"),
        ('[[case]]\nname = "a"\nwidth = 16\n[[case]]\nname = "a"\nwidth = 32\n', "names two cases"),
    ]:
        suite = tmp_path / "s.toml"
        suite.write_text(body)
        with pytest.raises(ValueError, match=said):
            varprop.check_suite(suite, golden=tmp_path / "g", bless=True, progress=False)
        assert not (tmp_path / "g").exists()
