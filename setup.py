"""Installs tflv: the library (`tflv`), its data pipelines (`data`) and trainers (`trainers`).

Exact versions for a reproducible environment are in requirements.lock (`make venv` uses them);
the ranges below are what the code is written against. The version is `tflv.__version__`, read
from tflv/__init__.py without importing it. `python -m build` makes the sdist and the wheel
(`--no-isolation` builds with the installed setuptools, offline).
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(path: str) -> str:
    with open(os.path.join(HERE, path), encoding="utf-8") as f:
        return f.read()


def version() -> str:
    match = re.search(r'^__version__ = "([^"]+)"$', read("tflv/__init__.py"), re.M)
    if not match:
        raise RuntimeError('tflv/__init__.py must define __version__ = "X.Y.Z"')
    return match.group(1)


setup(
    name="tflv",
    version=version(),
    description="Deep latent-variable models of natural language in TensorFlow, Keras 3 and TFP",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    python_requires=">=3.11",
    packages=find_packages(include=["tflv", "tflv.*", "trainers", "trainers.*", "data", "data.*"]),
    package_data={"tflv": ["py.typed"]},  # PEP 561: the annotations are for type checkers
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-probability>=0.25,<0.26",
        # TFP 0.25 refuses to import without tf-keras; tflv itself uses Keras 3 only.
        "tf-keras>=2.21,<2.22",
        "keras>=3.10,<4",
        "tensorflow-datasets>=4.9,<4.10",
        "absl-py>=2",
        "numpy",
        "scipy",
        "matplotlib",
        "tensorboard>=2.21,<2.22",
        "sacrebleu>=2.4",
    ],
    extras_require={
        # the E2E challenge's METEOR, ROUGE-L and CIDEr (tflv.text_metrics; they also need Java)
        "e2e": ["pycocoevalcap>=1.2,<1.3"],
        "test": ["pytest", "pytest-xdist", "scikit-learn", "build", "pdoc>=16,<17",
                 "pycocoevalcap>=1.2,<1.3", "nltk>=3.9"],
    },
    entry_points={
        "console_scripts": [
            "tflv-train=trainers.train:run",
            "tflv-eval=trainers.evaluate:run",
            "tflv-export=trainers.export:run",
        ]
    },
)
