"""Every JSON output of the CLI loads into pandas as the README's Output
section says (issue 15): one row per layer, scheme, grid point, case or
adapter, with the column names the CSV uses."""

import io
import json

import pandas as pd

SMALL = ["--width", "16", "--depth", "3", "--batch", "4", "--networks", "2", "-q"]


def test_every_json_output_loads_as_documented(cli, tmp_path):
    run = json.loads(cli("run", *SMALL, "--format", "json"))
    layers = pd.json_normalize(run, record_path="layers")
    assert len(layers) == 4 and "q_pre_mean" in layers and "q_pre_theory" in layers
    assert run["config"]["networks"] == 2

    text = cli("theory", "--depth", "3", "--format", "json")
    theory = pd.read_json(io.StringIO(text), orient="records")
    assert len(theory) == 4 and "q_pre_theory" in theory

    for extra in (["--summary"], ["--edge-of-chaos", "--sigma-b2", "0.05"]):
        one = pd.json_normalize(json.loads(cli("theory", *extra, "--format", "json")))
        assert len(one) == 1

    compare = json.loads(cli("compare", "--inits", "he-normal,xavier-normal", *SMALL,
                             "--format", "json"))
    schemes = pd.json_normalize(compare, record_path="schemes")
    per_layer = pd.json_normalize(compare, record_path="layers")
    assert len(schemes) == 2 and len(per_layer) == 8

    phase = json.loads(cli("phase", "--sigma-w2-range", "1:2:2", "--sigma-b2-range",
                           "0:0.1:2", *SMALL, "--format", "json"))
    points = pd.json_normalize(phase, record_path="points")
    assert len(points) == 4 and "sigma_w2" in points and "sigma_b2" in points

    check = json.loads(cli("check", *SMALL, "--format", "json"))
    cases = pd.json_normalize(check, record_path="cases")
    assert len(cases) == 1

    adapters = pd.read_json(io.StringIO(cli("devices", "--format", "json")), orient="records")
    assert len(adapters) >= 1 and "index" in adapters


def test_one_naming_scheme_across_run_theory_sweep_and_phase(cli, tmp_path):
    flags = ["--width", "16", "--depth", "3", "--act", "tanh", "--init", "xavier-normal"]
    run = pd.read_csv(io.StringIO(cli("run", *flags, "--batch", "4", "--networks", "2",
                                      "-q", "--format", "csv")))
    theory = pd.read_csv(io.StringIO(cli("theory", *flags, "--format", "csv")))
    # predictions are <name>_theory in both, and they agree where both have them
    predicted = [c for c in theory.columns if c.endswith("_theory")]
    shared = [c for c in predicted if c in run.columns]
    assert {"q_pre_theory", "q_post_theory", "c_pre_theory", "mean_post_theory"} <= set(shared)
    # (run adds the law of one input's log q only where it holds at every
    # layer: relu and identity; theory gives it where it is known, here row 0)
    joined = run.merge(theory, on="layer", suffixes=("_run", "_th"))
    for c in shared:
        a, b = joined[c + "_run"], joined[c + "_th"]
        close = (a - b).abs() <= 1e-12 * b.abs().clip(lower=1)
        assert (close | (a.isna() & b.isna())).all(), c
    # underscores everywhere: no column of any table has a dash
    sweep = tmp_path / "s.toml"
    sweep.write_text("width = 16\ndepth = 2\nbatch = 4\nnetworks = 2\n[grid]\nsigma-b2 = [0.0, 0.1]\n")
    cli("sweep", str(sweep), "--out-dir", str(tmp_path / "r"), "-q")
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    phase = pd.read_csv(io.StringIO(cli("phase", "--sigma-w2-range", "1:2:2", "--sigma-b2-range",
                                        "0:0.1:2", "--width", "16", "--depth", "2", "--batch",
                                        "4", "--networks", "2", "-q", "--format", "csv")))
    for table in (run, theory, summary, phase):
        assert not [c for c in table.columns if "-" in c], list(table.columns)
    assert "sigma_b2" in summary and "sigma_b2" in phase
