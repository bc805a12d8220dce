"""varprop.check passes on a correct configuration and fails on the wrong
theory (the test-only hook theory_sigma_w2)."""

import varprop


def test_check_passes_and_fails_on_the_wrong_theory():
    # the configuration of tests/check_cli.rs (a custom sigma_w2, which the hook replaces)
    small = dict(width=64, depth=6, batch=8, act="tanh", sigma_w2=1.5, sigma_b2=0.05,
                 engine="dense", progress=False)
    ok = varprop.check(**small)
    assert ok.passed and bool(ok)
    assert len(ok.table) > 0 and ok.max_z <= ok.bound
    assert set(ok.table.columns) >= {"layer", "column", "measured", "se", "theory", "z"}
    assert ok.config["networks"] == varprop.CHECK_NETWORKS
    bad = varprop.check(theory_sigma_w2=2.5, **small)
    assert not bad and not bad.passed
    assert bad.max_z > bad.bound and len(bad.failures) > 0
    print(ok, bad, sep="\n")


def test_check_needs_two_networks():
    import pytest

    with pytest.raises(ValueError, match="^networks"):
        varprop.check(width=8, depth=2, networks=1, progress=False)
