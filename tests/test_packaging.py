"""The wheel installs and works outside the checkout.

`python -m build` (offline: `--no-isolation`, the installed setuptools) makes the sdist and,
from it, the wheel, out of a copy of the package's files; the wheel is installed with pip
(`--no-deps --no-index`) into a fresh virtual environment whose dependencies come from this
one's site-packages (a `.pth` line: nothing is downloaded, and this checkout is not importable
there). From a folder outside the checkout, the installed `tflv-train`, `tflv-eval` and
`tflv-export` print their own flags first under `--help`, quietly (TensorFlow's start-up lines
only with `--verbosity=0`), and the README's Python example runs.
"""
import email
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile

import pytest

import tflv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_FILES = ("setup.py", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in",
                 "requirements.lock")
PACKAGES = ("tflv", "trainers", "data")
FIRST_FLAG = {"tflv-train": "model", "tflv-eval": "model_dir", "tflv-export": "model_dir"}


def copy_sources(dest):
    """The files the build reads (so it writes its egg-info and build/ outside the checkout)."""
    for name in PACKAGE_FILES:
        shutil.copy(os.path.join(REPO, name), dest / name)
    for package in PACKAGES:
        shutil.copytree(os.path.join(REPO, package), dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "BUILD"))


def readme_example() -> str:
    """The README's Python block of "tflv layers in your own Keras model"."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("## tflv layers in your own Keras model", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def clean_env():
    """A user's environment: no PYTHONPATH, TensorFlow's logging left to the commands."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    src, dist, env_dir, outside = (tmp_path / name for name in ("src", "dist", "env", "outside"))
    src.mkdir()
    outside.mkdir()
    copy_sources(src)
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist),
                    str(src)], check=True, capture_output=True, timeout=600)
    wheel, = dist.glob("tflv-*.whl")
    sdist, = dist.glob("tflv-*.tar.gz")

    version = tflv.__version__
    assert wheel.name.startswith(f"tflv-{version}-") and sdist.name == f"tflv-{version}.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "setup.py", "tflv/py.typed", "trainers/evaluate.py"} <= names
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        info = f"tflv-{version}.dist-info"
        metadata = email.message_from_bytes(whl.read(f"{info}/METADATA"))
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    assert "tflv/py.typed" in names and f"{info}/licenses/LICENSE" in names
    assert metadata["Version"] == version
    assert "Apache-2.0" in (metadata["License-Expression"] or metadata["License"] or "")
    assert set(re.findall(r"^(tflv-\w+) = ", entry_points, re.M)) == set(FIRST_FLAG)

    venv.create(env_dir, with_pip=False)
    python = str(env_dir / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True, text=True)
    with open(os.path.join(purelib.stdout.strip(), "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")  # this venv's TF, TFP, Keras, absl
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                    "--no-index", "--quiet", str(wheel)], check=True, capture_output=True,
                   timeout=300)

    run = lambda *args: subprocess.run(args, cwd=outside, env=clean_env(), capture_output=True,
                                       text=True, timeout=300)
    where = run(python, "-c", "import tflv, trainers, data; print(tflv.__file__, trainers.__file__,"
                " data.__file__, tflv.__version__)")
    assert where.returncode == 0, where.stderr[-3000:]
    *files, installed_version = where.stdout.split()
    assert installed_version == version
    assert all(path.startswith(str(env_dir)) for path in files), files

    for script, first in FIRST_FLAG.items():
        verbose = script == "tflv-export"  # and --verbosity brings TensorFlow's lines back
        proc = run(str(env_dir / "bin" / script), "--help", *["--verbosity=0"] * verbose)
        assert proc.returncode == 0, proc.stderr[-3000:]
        listed = re.findall(r"^  --(\w+):", proc.stdout, re.M)
        assert listed and listed[0] == first, proc.stdout[:2000]
        tf_lines = re.search(r"^[IWE]\d{4} .*(oneDNN|cuda|cpu_feature_guard)", proc.stderr, re.M)
        assert bool(tf_lines) == verbose, proc.stderr[-2000:]

    example = run(python, "-c", readme_example())
    assert example.returncode == 0, example.stderr[-3000:]
    assert (outside / "vae.keras").exists()
