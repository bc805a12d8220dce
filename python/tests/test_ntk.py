"""The NTK from Python (issue 17): run(ntk=True) gives the CLI's columns
and its JSON summary, on the CPU reference and the GPU engines."""

import io
import json

import pandas as pd
import pytest

import varprop


@pytest.mark.parametrize(
    "flags, kwargs",
    [
        (
            ["--width", "16", "--depth", "3", "--networks", "2", "--device", "cpu", "--ntk"],
            dict(width=16, depth=3, networks=2, device="cpu", ntk=True),
        ),
        (
            ["--width", "64", "--depth", "4", "--batch", "4", "--networks", "2", "--ntk",
             "--parametrisation", "standard", "--act", "tanh"],
            dict(width=64, depth=4, batch=4, networks=2, ntk=True, parametrisation="standard",
                 act="tanh"),
        ),
        # through an architecture file: the block engine
        (
            ["--arch", "architectures/highway.toml", "--batch", "4", "--networks", "2", "--ntk"],
            dict(arch="architectures/highway.toml", batch=4, networks=2, ntk=True),
        ),
    ],
)
def test_ntk_equals_cli(cli, root, monkeypatch, flags, kwargs):
    monkeypatch.chdir(root)
    expected = pd.read_csv(io.StringIO(cli("run", "--format", "csv", "-q", *flags)))
    df = varprop.run(progress=False, **kwargs)
    assert "ntk_layer_mean" in df.columns and "ntk_layer_c_theory" in df.columns
    pd.testing.assert_frame_equal(df, expected, check_exact=True)
    doc = json.loads(cli("run", "--format", "json", "-q", *flags))
    assert df.attrs["ntk"] == doc["ntk"]
    assert len(df.attrs["ntk"]["networks"]) == kwargs["networks"]


def test_without_ntk_there_is_no_summary():
    df = varprop.run(width=16, depth=2, networks=2, device="cpu", progress=False)
    assert df.attrs["ntk"] is None and "ntk_layer_mean" not in df.columns


def test_bad_ntk_keywords_name_the_keyword():
    with pytest.raises(ValueError, match="parametrisation"):
        varprop.run(width=16, depth=2, networks=2, device="cpu", parametrisation="standard",
                    progress=False)
    with pytest.raises(ValueError, match="parametrisation"):
        varprop.run(width=16, depth=2, networks=2, device="cpu", ntk=True,
                    parametrisation="sp", progress=False)


def test_theory_ntk_equals_cli(cli, root, monkeypatch):
    monkeypatch.chdir(root)
    flags = ["--depth", "6", "--act", "erf", "--init", "xavier-normal", "--ntk",
             "--parametrisation", "standard"]
    expected = pd.read_csv(io.StringIO(cli("theory", "--format", "csv", *flags)))
    df = varprop.theory(depth=6, act="erf", init="xavier-normal", ntk=True,
                        parametrisation="standard")
    pd.testing.assert_frame_equal(df, expected, check_exact=True)
    with pytest.raises(ValueError, match="parametrisation"):
        varprop.theory(depth=6, parametrisation="standard")
    with pytest.raises(ValueError, match="ntk"):
        varprop.theory(depth=6, init="torch-default", ntk=True)
