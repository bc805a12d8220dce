"""Ctrl-C during a long run: KeyboardInterrupt within 2 s, and the
simulator stays usable."""

import _thread
import signal
import threading
import time

import pytest

import varprop


def _long_run(sim):
    # far longer than the test: about a million layers of width 128
    return sim.run(width=128, depth=1_000_000, batch=8, networks=2, engine="dense",
                   chunk=64, progress=False)


@pytest.mark.parametrize("how", ["pthread_kill", "interrupt_main"])
def test_sigint_returns_within_2_s(how):
    sim = varprop.Simulator(device="gpu")
    sim.run(width=8, depth=1, batch=2, networks=2, progress=False)  # context ready
    main = threading.main_thread().ident
    sent = {}

    def interrupt():
        sent["at"] = time.perf_counter()
        if how == "pthread_kill":
            signal.pthread_kill(main, signal.SIGINT)
        else:
            _thread.interrupt_main()

    timer = threading.Timer(1.5, interrupt)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _long_run(sim)
    latency = time.perf_counter() - sent["at"]
    timer.join()
    print(f"{how}: KeyboardInterrupt {latency:.3f} s after SIGINT")
    assert latency < 2.0
    # the cancelled run stops at its next chunk; the context serves the next run
    t = time.perf_counter()
    df = sim.run(width=8, depth=2, batch=2, networks=2, progress=False)
    assert len(df) == 3
    print(f"next run done {time.perf_counter() - t:.3f} s later")
