"""Typed model configurations: one frozen dataclass of documented hyperparameters per model.

Every model class has a `Config`, a `ModelConfig` subclass whose fields are its hyperparameters
with their defaults, types, documentation and valid ranges. The trainer's command line is generated
from the same fields (one option per field name, with the field's type, default and
documentation), so a model built in Python and one built by the trainer read the same settings:

    >>> from tflv.models import SentenceVAE
    >>> config = SentenceVAE.Config(latent_dim=8, kl_schedule="linear")
    >>> config.latent_dim, config.embed_dim
    (8, 256)
    >>> SentenceVAE.Config(latent="hyperbolic")
    Traceback (most recent call last):
    ...
    tflv.models.config.ConfigError: latent must be one of 'gaussian', 'vmf', got 'hyperbolic'

A field is declared with `hparam(default, doc, ...)`; fields several models share (`embed_dim`,
`hidden_dim`, ...) are declared once here (`EMBED_DIM`, ...) so they read alike in every model.

#### References
No mathematics here.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping


class ConfigError(ValueError):
    """A hyperparameter value a model cannot use; `fields` names the config fields at fault
    (the trainer reports them as its options of the same names)."""

    def __init__(self, message: str, *fields: str):
        super().__init__(message)
        self.fields = fields


def hparam(default: Any, doc: str, *, choices: tuple | None = None, at_least: float | None = None,
           positive: bool = False, unit_interval: bool = False) -> Any:
    """A config field: its default, its documentation and its valid values.

    Args:
      default: the value when not given (None: the model chooses, as `doc` says).
      doc: what the field means (one sentence or two; the trainer's help).
      choices: the valid values of a string field.
      at_least: the least valid value of a number.
      positive: a finite number > 0.
      unit_interval: a probability in [0, 1).
    """
    return dataclasses.field(default=default, metadata={
        "doc": doc, "choices": choices, "at_least": at_least, "positive": positive,
        "unit_interval": unit_interval})


def _check(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    if value is None:
        return
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, meta['choices']))}, got "
                          f"{value!r}", name)
    if meta["at_least"] is not None and value < meta["at_least"]:
        raise ConfigError(f"{name} must be >= {meta['at_least']:g}, got {value!r}", name)
    if meta["positive"] and not (0 < value < math.inf):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}", name)
    if meta["unit_interval"] and not 0 <= value < 1:
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}", name)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of every model's `Config`: checks each field against its `hparam` declaration."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if hints.get(field.name) is float and isinstance(value, int) and \
                    not isinstance(value, bool):
                object.__setattr__(self, field.name, float(value))  # 1 means 1.0
            if hints.get(field.name) == tuple[int, ...] and value is not None:
                object.__setattr__(self, field.name, tuple(int(v) for v in value))
            _check(field.name, getattr(self, field.name), field.metadata)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def pick(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """The config of the entries of `values` that are its fields (others are left out), e.g.
        from a mapping that holds every model's hyperparameters."""
        return cls(**{name: values[name] for name in cls.field_names() if name in values})

    def replace(self, **changes) -> "ModelConfig":
        """A copy with `changes`; an unknown name lists the valid ones."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ConfigError(f"{type(self).__qualname__} has no field {', '.join(unknown)}; its "
                              f"fields: {', '.join(self.field_names())}", *unknown)
        return dataclasses.replace(self, **changes)


class Reads:
    """A config whose field reads are recorded in `read`: which hyperparameters a model's
    settings use (e.g. `vmf_concentration` only with `latent="vmf"`). The trainer refuses an
    option the chosen settings never read, and records only those read."""

    def __init__(self, config: ModelConfig, read: set[str]):
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_read", read)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._config, name)
        self._read.add(name)
        return value

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


# Fields shared by several models, declared once.
EMBED_DIM = lambda: hparam(256, "Token embedding size; GSM's topic and word embedding size.",
                           at_least=1)
HIDDEN_DIM = lambda: hparam(256, "RNN state size; hidden width of bag-of-words encoders.",
                            at_least=1)
NUM_LAYERS = lambda: hparam(1, "Stacked RNN layers; bag-of-words encoder hidden layers.",
                            at_least=1)
DROPOUT = lambda: hparam(0.0, "Dropout rate.", unit_interval=True)
NUM_TOPICS = lambda: hparam(50, "Topics K of lda, gsm, prodlda (nvdm: latent dimension).",
                            at_least=1)
NUM_STATES = lambda: hparam(45, "hmm, neural_hmm, hmm_lm: hidden states K; factorial_hmm: "
                            "states per chain; neural_template: template states K (16 trains on "
                            "2 CPU cores).", at_least=1)
