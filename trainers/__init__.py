"""absl entry points: `train` (tflv-train), `evaluate` (tflv-eval), `export` (tflv-export) and
`sample`.

Importing the package from a command (`python -m trainers.train`, an installed `tflv-*` script)
imports TensorFlow quietly first (`trainers.cli.quiet_tensorflow_import`); a library user's
process is left alone.
"""
import sys

from trainers.cli import quiet_tensorflow_import

quiet_tensorflow_import(sys.argv)
