"""Bad arguments raise ValueError or TypeError whose message names the
keyword (the CLI's message, with `width` for `--width`)."""

import pytest

import varprop

SMALL = dict(width=8, depth=2, batch=2, networks=2, progress=False)

# (keyword arguments, exception, the keyword the message must start with)
BAD = [
    (dict(width=0), ValueError, "width"),
    (dict(width=-3), ValueError, "width"),
    (dict(width=2.5), TypeError, "width"),
    (dict(width="8"), TypeError, "width"),
    (dict(width=True), TypeError, "width"),
    (dict(depth=-1), ValueError, "depth"),
    (dict(depth=1.0), TypeError, "depth"),
    (dict(depth="5"), TypeError, "depth"),
    (dict(act="relu7"), ValueError, "act"),
    (dict(act=3), TypeError, "act"),
    (dict(init="he-gaussian"), ValueError, "init"),
    (dict(init=5), TypeError, "init"),
    (dict(init="he-normal", sigma_w2=2.0), ValueError, "sigma_w2"),
    (dict(sigma_w2=-1.0), ValueError, "sigma_w2"),
    (dict(sigma_w2="2"), TypeError, "sigma_w2"),
    (dict(sigma_b2=-0.1), ValueError, "sigma_b2"),
    (dict(sigma_b2=[0.1]), TypeError, "sigma_b2"),
    (dict(batch=3), ValueError, "batch"),
    (dict(batch=0), ValueError, "batch"),
    (dict(batch=-2), ValueError, "batch"),
    (dict(batch=4.0), TypeError, "batch"),
    (dict(networks=0), ValueError, "networks"),
    (dict(networks=10**9), ValueError, "networks"),
    (dict(networks="4"), TypeError, "networks"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=0.5), TypeError, "seed"),
    (dict(engine="fast"), ValueError, "engine"),
    (dict(convention="torch"), ValueError, "convention"),
    (dict(convention=1), TypeError, "convention"),
    (dict(nonlinearity="gelu"), ValueError, "nonlinearity"),
    (dict(nonlinearity="relu", kaiming_a=0.1), ValueError, "kaiming_a"),
    (dict(kaiming_a="0.1"), TypeError, "kaiming_a"),
    (dict(act="gelu", gain_from_act=True), ValueError, "gain_from_act"),
    (dict(gain_from_act=1), TypeError, "gain_from_act"),
    (dict(convention="jax", nonlinearity="relu"), ValueError, "nonlinearity"),
    (dict(engine=None), TypeError, "engine"),
    (dict(device="tpu"), ValueError, "device"),
    (dict(device=0), TypeError, "device"),
    (dict(backward=1), TypeError, "backward"),
    (dict(jacobian="yes"), TypeError, "jacobian"),
    (dict(weight_grads=None), TypeError, "weight_grads"),
    (dict(widths="8,x,4"), ValueError, "widths"),
    (dict(widths=8), TypeError, "widths"),
    (dict(widths=[8, -1, 4]), ValueError, "widths"),
    (dict(q0=0.0), ValueError, "q0"),
    (dict(q0=-1.0), ValueError, "q0"),
    (dict(q0="1"), TypeError, "q0"),
    (dict(c0=1.5), ValueError, "c0"),
    (dict(c0=-2.0), ValueError, "c0"),
    (dict(act="leaky-relu", alpha="0.1"), TypeError, "alpha"),
    (dict(omega=[1.0]), TypeError, "omega"),
    (dict(init="custom", sigma_w2=1.0, dist="cauchy"), ValueError, "dist"),
    (dict(gain="1"), TypeError, "gain"),
    (dict(fan_mode="fan_both"), ValueError, "fan_mode"),
    (dict(fan_mode=1), TypeError, "fan_mode"),
    (dict(bias="zero"), ValueError, "bias"),
    (dict(bias=0), TypeError, "bias"),
    (dict(chunk=0), ValueError, "chunk"),
    (dict(chunk=1.5), TypeError, "chunk"),
    (dict(checkpoint_every=-1), ValueError, "checkpoint_every"),
    (dict(max_memory="8G"), TypeError, "max_memory"),
    (dict(arch=42), TypeError, "arch"),
    (dict(arch="input = 0\n[[block]]\ntype = 'dense'\nwidth = 4\n"), ValueError, "arch"),
    (dict(per_network=1), TypeError, "per_network"),
    (dict(progress="yes"), TypeError, "progress"),
]


@pytest.mark.parametrize("kwargs,exc,keyword", BAD, ids=[repr(b[0]) for b in BAD])
def test_bad_value_names_the_keyword(kwargs, exc, keyword):
    args = {**SMALL, **kwargs}
    with pytest.raises(exc) as info:
        varprop.run(**args)
    assert str(info.value).startswith(keyword), str(info.value)


def test_enough_cases():
    assert len(BAD) >= 40


def test_arch_conflicts_name_the_keyword(root):
    with pytest.raises(ValueError, match=r"^width: is set per block"):
        varprop.run(arch=str(root / "architectures" / "dense.toml"), width=8, progress=False)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError):
        varprop.run(widht=8)
    with pytest.raises(TypeError):
        varprop.Simulator(device="cpu").run(widht=8)
    with pytest.raises(TypeError):
        varprop.theory(depht=3)


def test_theory_errors_name_the_keyword():
    with pytest.raises(ValueError, match=r"^act:"):
        varprop.theory(act="nope")
    with pytest.raises(ValueError, match=r"^sigma_w2"):
        varprop.edge_of_chaos(sigma_w2=1.0, sigma_b2=0.1, act="tanh")


def test_messages_match_the_cli(cli):
    import subprocess

    with pytest.raises(ValueError) as info:
        varprop.run(batch=3, progress=False)
    cli_path = None
    try:
        cli("run", "--batch", "3")
    except AssertionError as e:
        cli_path = str(e)
    assert cli_path is not None
    message = str(info.value).split(": ", 1)[1]
    assert f"--batch: {message}" in cli_path
