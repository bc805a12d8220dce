"""Shared fixtures: the command-line binary the Python results are compared
with (VARPROP_BIN, else $CARGO_TARGET_DIR/release/varprop, else
target/release/varprop, built with cargo when missing)."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _binary() -> pathlib.Path:
    if os.environ.get("VARPROP_BIN"):
        return pathlib.Path(os.environ["VARPROP_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "release" / "varprop"
    if not path.exists():
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    return path


@pytest.fixture(scope="session")
def cli():
    path = _binary()

    def call(*args: str) -> str:
        done = subprocess.run(
            [str(path), *args], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise AssertionError(f"varprop {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    return call


@pytest.fixture(scope="session")
def root():
    return ROOT
