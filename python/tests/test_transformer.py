"""Sequences and attention from Python (issue 18): run(arch=..., tokens=...,
token_c0=...) gives `varprop run`'s table of a sequence file, exactly, with
its token columns; the token flags on a file without sequences are refused."""

import io

import pandas as pd
import pytest

import varprop


def test_sequence_run_equals_cli(cli, root):
    arch = str(root / "architectures" / "transformers" / "pre_ln.toml")
    flags = ["--arch", arch, "--batch", "2", "--networks", "2", "--device", "cpu",
             "--tokens", "4", "--token-c0", "0.3", "--backward"]
    expected = pd.read_csv(io.StringIO(cli("run", "--format", "csv", "-q", *flags)))
    df = varprop.run(arch=arch, batch=2, networks=2, device="cpu", tokens=4, token_c0=0.3,
                     backward=True, progress=False)
    for column in ["token_cos_mean", "token_cos_theory", "stable_rank_z",
                   "attn_entropy_mean", "grad_wq_mean", "grad_wv_se"]:
        assert column in df.columns
    # the input tokens' correlation, as asked
    assert df["token_cos_theory"].iloc[0] == pytest.approx(0.3)
    pd.testing.assert_frame_equal(df, expected, check_exact=True)


def test_token_flags_need_a_sequence_file(root):
    arch = str(root / "architectures" / "dense.toml")
    with pytest.raises(ValueError, match="^tokens: applies to sequence"):
        varprop.run(arch=arch, tokens=4, networks=2, device="cpu", progress=False)
    with pytest.raises(ValueError, match="^token_c0: applies to"):
        varprop.run(width=8, depth=2, token_c0=0.5, networks=2, device="cpu", progress=False)
