"""One Simulator keeps one GPU context: the first run creates it (adapter,
device, pipelines), the next ones reuse it."""

import time

import pandas as pd

import varprop


def test_simulator_reused_for_20_runs():
    sim = varprop.Simulator(device="gpu")
    assert not sim.has_context
    times = []
    frames = []
    for seed in range(20):
        t = time.perf_counter()
        frames.append(sim.run(width=16, depth=3, batch=4, networks=2, seed=seed,
                              engine="dense", progress=False))
        times.append(time.perf_counter() - t)
        assert sim.has_context
    print(f"first run {times[0]:.3f} s, second {times[1]:.3f} s, "
          f"median of the rest {sorted(times[1:])[9]:.3f} s")
    # the first run pays for the context and the pipelines; the second does not
    assert times[1] < 0.5 * times[0], times
    # same seed, same numbers: the reused context changes nothing
    again = sim.run(width=16, depth=3, batch=4, networks=2, seed=0, engine="dense",
                    progress=False)
    pd.testing.assert_frame_equal(frames[0], again, check_exact=True)


def test_module_functions_share_a_default_simulator():
    a = varprop.default_simulator("gpu")
    varprop.run(width=8, depth=2, batch=2, networks=2, progress=False)
    assert varprop.default_simulator("gpu") is a and a.has_context
    assert varprop.default_simulator("cpu").is_cpu


def test_progress_callback_sees_every_row():
    seen = []
    varprop.run(width=16, depth=40, batch=4, networks=2, chunk=8, engine="dense",
                progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (82, 82)


def test_tqdm_bar_runs():
    import pytest

    pytest.importorskip("tqdm")
    df = varprop.run(width=16, depth=10, batch=4, networks=2, progress=True)
    assert len(df) == 11
