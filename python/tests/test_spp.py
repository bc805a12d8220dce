"""The Signal Propagation Plot from Python (issue 16): run(arch=..., spp=True)
gives `varprop spp`'s columns, exactly; spp without arch, or on the
many-run functions, is refused."""

import io

import pandas as pd
import pytest

import varprop

def test_spp_equals_cli(cli, tmp_path):
    text = """
input = { channels = 3, size = 8 }
[[block]]
type = "conv"
channels = 8
kernel = 3
act = "identity"
[[block]]
type = "stage"
blocks = 2
channels = 16
stride = 2
bottleneck = false
"""
    path = tmp_path / "stage.toml"
    path.write_text(text)
    flags = ["--arch", str(path), "--batch", "4", "--networks", "2", "--device", "cpu"]
    expected = pd.read_csv(io.StringIO(cli("spp", "--format", "csv", "-q", *flags)))
    df = varprop.run(arch=str(path), batch=4, networks=2, device="cpu", spp=True,
                     progress=False)
    for column in ["spp_mean2_mean", "spp_var_theory", "spp_branch_var_z"]:
        assert column in df.columns
    pd.testing.assert_frame_equal(df, expected, check_exact=True)


def test_spp_needs_an_architecture():
    with pytest.raises(ValueError, match="spp"):
        varprop.run(width=8, depth=2, networks=2, device="cpu", spp=True, progress=False)


def test_spp_on_an_explicit_gram_is_refused(root):
    # gram runs dense and normalisation layers, but the channel sums are the
    # block engine's: refused before any work, naming spp
    arch = str(root / "architectures" / "layer_norm_mlp.toml")
    with pytest.raises(ValueError, match="spp"):
        varprop.run(arch=arch, engine="gram", networks=2, spp=True, progress=False)


def test_many_run_functions_refuse_spp():
    with pytest.raises(TypeError, match="spp"):
        varprop.compare(inits=["he-normal"], width=8, depth=2, device="cpu", spp=True)
