"""The init names under each convention from Python, as the CLI resolves
them (issue 20): the law every layer got is in df.attrs["config"]."""

import pytest

import varprop

SMALL = dict(widths=[256, 512], batch=2, networks=2, device="cpu", progress=False)


def _law(**kwargs):
    df = varprop.run(**SMALL, **kwargs)
    return df.attrs["config"]["layer_laws"][0]


def test_pytorch_kaiming_ignores_the_activation_unless_asked():
    # kaiming_normal_(w): nonlinearity leaky_relu, a = 0, so v fan_in = 2
    assert _law(init="he-normal", act="tanh")["v_fan_in"] == pytest.approx(2.0, rel=1e-12)
    assert _law(init="he-normal", act="tanh", gain_from_act=True)["v_fan_in"] == pytest.approx(
        25 / 9, rel=1e-12
    )
    assert _law(init="he-normal", nonlinearity="leaky_relu", kaiming_a=0.2)[
        "v_fan_in"
    ] == pytest.approx(2 / 1.04, rel=1e-12)


def test_jax_normal_schemes_are_truncated():
    law = _law(init="he-normal", convention="jax")
    assert law["weight_dist"] == "truncated-normal"
    assert law["truncation"] == 2.0
    assert law["v_fan_in"] == pytest.approx(2.0, rel=1e-12)


def test_theory_reads_the_convention():
    torch = varprop.theory(width=64, depth=2, act="tanh", init="he-normal")
    asked = varprop.theory(width=64, depth=2, act="tanh", init="he-normal", gain_from_act=True)
    # layer 1's q_pre = v fan_in q0 with q0 = 1
    assert torch["q_pre_theory"][1] == pytest.approx(2.0, rel=1e-12)
    assert asked["q_pre_theory"][1] == pytest.approx(25 / 9, rel=1e-12)
