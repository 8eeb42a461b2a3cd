"""Installs tflv: the library (`tflv`), its data pipelines (`data`) and trainers (`trainers`).

Exact versions for a reproducible environment are in requirements.lock (`make venv` uses them);
the ranges below are what the code is written against.
"""
from setuptools import find_packages, setup

setup(
    name="tflv",
    version="0.1.0",
    description="Deep latent-variable models of natural language in TensorFlow, Keras 3 and TFP",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["tflv", "tflv.*", "trainers", "trainers.*", "data", "data.*"]),
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
    extras_require={"test": ["pytest", "pytest-xdist", "scikit-learn", "pdoc>=16,<17"]},
    entry_points={
        "console_scripts": [
            "tflv-train=trainers.train:run",
            "tflv-eval=trainers.evaluate:run",
            "tflv-export=trainers.export:run",
        ]
    },
)
