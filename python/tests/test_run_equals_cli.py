"""varprop.run equals pd.read_csv of `varprop run --format csv` for the same
arguments: every column, every value, for each engine."""

import io
import json

import pandas as pd
import pytest

import varprop

CASES = [
    # (id, CLI flags, run keywords)
    ("dense", ["--width", "32", "--depth", "12", "--engine", "dense"],
     dict(width=32, depth=12, engine="dense")),
    ("dense-backward-jacobian",
     ["--width", "24", "--depth", "6", "--engine", "dense", "--backward", "--jacobian",
      "--weight-grads", "--act", "tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05"],
     dict(width=24, depth=6, engine="dense", backward=True, jacobian=True,
          weight_grads=True, act="tanh", sigma_w2=1.5, sigma_b2=0.05)),
    ("gram", ["--width", "64", "--depth", "12", "--batch", "8", "--engine", "gram"],
     dict(width=64, depth=12, batch=8, engine="gram")),
    ("auto-widths", ["--widths", "20,40x3,10", "--init", "xavier-normal", "--seed", "7"],
     dict(widths="20,40x3,10", init="xavier-normal", seed=7)),
    ("block-arch", ["--arch", "architectures/dense.toml", "--networks", "3"],
     dict(arch="architectures/dense.toml", networks=3)),
    # dense and layer-norm layers: auto takes gram; blocks on request
    ("gram-arch", ["--arch", "architectures/layer_norm_mlp.toml", "--networks", "2",
                   "--backward", "--jacobian"],
     dict(arch="architectures/layer_norm_mlp.toml", networks=2, backward=True, jacobian=True)),
    ("blocks-arch", ["--arch", "architectures/layer_norm_mlp.toml", "--networks", "2",
                     "--engine", "blocks"],
     dict(arch="architectures/layer_norm_mlp.toml", networks=2, engine="blocks")),
    ("block-mean-preserving", ["--width", "16", "--depth", "4", "--act", "tanh",
                               "--bias", "mean-preserving"],
     dict(width=16, depth=4, act="tanh", bias="mean-preserving")),
    ("cpu", ["--device", "cpu", "--width", "16", "--depth", "5", "--batch", "4",
             "--networks", "2", "--c0", "0.2", "--q0", "2.0"],
     dict(device="cpu", width=16, depth=5, batch=4, networks=2, c0=0.2, q0=2.0)),
]


@pytest.mark.parametrize("flags,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_run_equals_cli_csv(cli, root, monkeypatch, flags, kwargs):
    monkeypatch.chdir(root)
    expected = pd.read_csv(io.StringIO(cli("run", "--format", "csv", "-q", *flags)))
    df = varprop.run(progress=False, **kwargs)
    assert list(df.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(df, expected, check_exact=True)
    # the config block and the summary are the JSON output's
    doc = json.loads(cli("run", "--format", "json", "-q", *flags))
    assert df.attrs["config"] == doc["config"]
    assert df.attrs["summary"] == doc.get("summary")


def test_arch_as_text_and_dict(root):
    text = (root / "architectures" / "residual.toml").read_text()
    by_path = varprop.run(arch=str(root / "architectures" / "residual.toml"), networks=2,
                          progress=False)
    by_text = varprop.run(arch=text, networks=2, progress=False)
    import tomllib

    by_dict = varprop.run(arch=tomllib.loads(text), networks=2, progress=False)
    pd.testing.assert_frame_equal(by_path, by_text, check_exact=True)
    pd.testing.assert_frame_equal(by_path, by_dict, check_exact=True)


def test_per_network_is_long_format():
    df, per = varprop.run(width=16, depth=5, networks=3, per_network=True, progress=False)
    assert len(per) == 3 * 6
    assert list(per.columns[:3]) == ["network", "layer", "width"]
    # the table's mean of log q over networks is the per-network mean
    mean = per.groupby("layer")["log_q_post"].mean().to_numpy()
    assert abs(mean - df["log_q_post_mean"].to_numpy()).max() < 1e-9


def test_theory_equals_cli(cli):
    expected = pd.read_csv(io.StringIO(cli("theory", "--format", "csv", "--act", "tanh",
                                           "--sigma-w2", "1.5", "--depth", "20")))
    pd.testing.assert_frame_equal(
        varprop.theory(act="tanh", sigma_w2=1.5, depth=20), expected, check_exact=True
    )


def test_fixed_point_and_edge_of_chaos(cli):
    fp = varprop.fixed_point(act="tanh", sigma_w2=1.5, sigma_b2=0.05)
    expected = json.loads(cli("theory", "--summary", "--format", "json", "--act", "tanh",
                              "--sigma-w2", "1.5", "--sigma-b2", "0.05"))
    assert fp == expected
    assert {"q_star", "c_star", "chi1", "xi_q", "xi_c", "phase"} <= set(fp)
    eoc = json.loads(cli("theory", "--edge-of-chaos", "--format", "json", "--act", "tanh",
                         "--sigma-b2", "0.05"))
    assert varprop.edge_of_chaos(0.05, act="tanh") == eoc["sigma_w2"]
    # ReLU without bias: sigma_w2 = 2 (He)
    assert abs(varprop.edge_of_chaos(0.0, act="relu") - 2.0) < 1e-9
    # at the edge, chi1 = 1
    w = varprop.edge_of_chaos(0.05, act="tanh")
    assert abs(varprop.fixed_point(act="tanh", sigma_w2=w, sigma_b2=0.05)["chi1"] - 1) < 1e-6


def test_devices():
    ds = varprop.devices()
    assert isinstance(ds, list) and ds, "lavapipe or a GPU is expected in CI"
    assert {"index", "name", "backend", "device_type"} <= set(ds[0])


def test_arrays_are_the_per_network_values_and_the_jacobian():
    import numpy as np

    df, per, arrays = varprop.run(width=16, depth=5, networks=3, jacobian=True,
                                  per_network=True, arrays=True, progress=False)
    assert arrays["log_q_post"].shape == (3, 6) and arrays["layer"].tolist() == list(range(6))
    for col in ["log_q_post", "q_pre", "c_pre", "log_jac_m1"]:
        np.testing.assert_array_equal(
            arrays[col], per.pivot(index="network", columns="layer", values=col).to_numpy())
    # the Jacobian summary is the mean (and SE) of the per-network values
    s = df.attrs["summary"]
    assert arrays["jac_summary"].shape == (3, 2)
    assert arrays["jac_summary"][0, 0] == s["jac_m1_mean"]
    assert arrays["jac_summary"][2, 1] == s["jac_spread_se"]
    np.testing.assert_allclose(np.exp(arrays["jac_log_m1"]).mean(), s["jac_m1_mean"], rtol=1e-9)
    np.testing.assert_allclose(arrays["jac_spread"].mean(), s["jac_spread_mean"], rtol=1e-9)
    # without the Jacobian probes: NaN, and (df, arrays) alone
    df2, a2 = varprop.run(width=16, depth=5, networks=3, arrays=True, progress=False)
    assert np.isnan(a2["jac_log_m1"]).all() and np.isnan(a2["jac_summary"]).all()
    pd.testing.assert_frame_equal(df2, varprop.run(width=16, depth=5, networks=3,
                                                   progress=False), check_exact=True)
