"""Typed model configs (tflv/models/config.py): every model built in Python from documented
keyword defaults, and the trainer's model flags generated from the same fields (defined once).
"""
import dataclasses
import io
import pathlib
import tokenize
import typing

import pytest

from tflv.models import MODELS, ConfigError, SentenceVAE
from tflv.models.config import ModelConfig
from trainers import flags as tflv_flags

FLAGS = tflv_flags.FLAGS
TFLV = pathlib.Path(__file__).resolve().parents[2] / "tflv"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_has_a_frozen_documented_config_with_valid_defaults(name):
    config_cls = MODELS[name].Config
    assert config_cls is not ModelConfig and issubclass(config_cls, ModelConfig)
    config = config_cls()  # the defaults pass the config's own checks
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(config, config_cls.field_names()[0], 1)
    for field in dataclasses.fields(config_cls):
        assert field.metadata["doc"].strip(), f"{name}: {field.name} is undocumented"


def test_the_model_flags_are_the_config_fields_with_their_types_defaults_and_docs():
    uses = {}
    for name, model_cls in MODELS.items():
        hints = typing.get_type_hints(model_cls.Config)
        for field in dataclasses.fields(model_cls.Config):
            uses.setdefault(field.name, []).append((name, field, hints[field.name]))
    assert set(tflv_flags.MODEL_FLAGS) == set(uses)
    kinds = {bool: "bool", int: "int", float: "float", str: "string"}
    for flag_name, fields in uses.items():
        flag = FLAGS[flag_name]
        for model, field, hint in fields:
            default = field.default
            assert flag.default == (list(map(str, default)) if isinstance(default, tuple)
                                    else default), (flag_name, model)
            assert field.metadata["doc"].rstrip(".") in flag.help, (flag_name, model)
            if field.metadata["choices"]:
                assert flag.parser.enum_values == list(field.metadata["choices"])
            elif hint in kinds:
                assert flag.flag_type() == kinds[hint], (flag_name, model)


def test_a_flag_out_of_its_fields_range_is_refused_where_parsed():
    for args, message in ((["--embed_dim=0"], "--embed_dim must be >= 1"),
                          (["--dropout=1.0"], r"--dropout must be in \[0, 1\)"),
                          (["--vmf_concentration=0"], "--vmf_concentration must be a finite"),
                          (["--attention_samples=1"], "--attention_samples must be >= 2")):
        with pytest.raises(Exception, match=message):
            FLAGS.unparse_flags()
            FLAGS(["train", *args])
    FLAGS.unparse_flags()


def test_config_errors_name_the_field_and_the_trainer_names_the_flag():
    with pytest.raises(ConfigError, match="latent must be one of 'gaussian', 'vmf', got 'x'"):
        SentenceVAE.Config(latent="x")
    with pytest.raises(ConfigError, match="free_bits must be >= 0, got -1"):
        SentenceVAE.Config(free_bits=-1.0)
    with pytest.raises(ConfigError, match="has no field num_topics; its fields: embed_dim"):
        SentenceVAE.Config().replace(num_topics=3)
    with pytest.raises(ConfigError, match="takes a MixtureLM.Config"):
        MODELS["mixture_lm"].from_corpus(None, SentenceVAE.Config())
    with pytest.raises(ConfigError, match="attention_training must be one of") as err:
        MODELS["latent_attention"].Config(attention_training="hard")
    assert tflv_flags.as_flags(err.value).startswith("--attention_training must be one of")
    assert SentenceVAE.Config(vmf_concentration=5).vmf_concentration == 5.0  # an int is a float


def test_a_run_records_flag_values_restore_the_same_config():
    """A `tflv_run.json` records flag values (`cnn_dilations` as strings); they give the config
    the Python defaults give."""
    recorded = {"cnn_dilations": ["1", "2", "4"], "latent_dim": 32, "kl_schedule": "none",
                "num_states": 45}
    config = tflv_flags.model_config(SentenceVAE, recorded)
    assert config == SentenceVAE.Config() and config.cnn_dilations == (1, 2, 4)
    defaults = {name: FLAGS[name].default for name in tflv_flags.MODEL_FLAGS}
    for model_cls in MODELS.values():
        assert tflv_flags.model_config(model_cls, defaults) == model_cls.Config()


class _Sizes:
    """What `from_corpus` reads of a corpus for the models that need only sizes."""
    info = {"vocab_size": 7}

    def num_examples(self, split):
        return 10


@pytest.mark.parametrize("name,changes,read", [
    ("sentence_vae", {}, {"embed_dim", "hidden_dim", "dropout", "latent_dim", "latent", "flow",
                          "decoder", "num_layers", "skip_connections", "word_dropout",
                          "kl_schedule", "free_bits", "sa_vae_steps", "iw_samples"}),
    ("sentence_vae", {"latent": "vmf", "decoder": "cnn"}, {"vmf_concentration", "cnn_dilations"}),
    ("mixture_lm", {"estimator": "gumbel_softmax"}, {"latent_samples", "gumbel_temperature",
                                                     "straight_through"}),
    ("hmm", {"hmm_training": "em"}, {"num_states", "hmm_training", "em_decay",
                                     "em_pseudo_count"}),
    ("prodlda", {}, {"num_topics", "topic_decoder", "topic_recipe"})])
def test_from_corpus_reports_the_fields_its_settings_read(name, changes, read):
    """What the trainer records and the flags it accepts: fields another setting ignores
    (`vmf_concentration` of a Gaussian posterior) are not read."""
    got, model_cls = set(), MODELS[name]
    small = {k: 4 for k in ("embed_dim", "hidden_dim") if k in model_cls.Config.field_names()}
    model_cls.from_corpus(_Sizes(), read=got, **small, **changes)
    assert read <= got
    assert got <= set(model_cls.Config.field_names())
    if name == "sentence_vae" and not changes:
        assert not {"vmf_concentration", "cnn_dilations", "kl_warmup_steps", "num_flows"} & got


def _strings_and_comments(path):
    with open(path, "rb") as f:
        for token in tokenize.tokenize(io.BytesIO(f.read()).readline):
            if token.type in (tokenize.STRING, tokenize.COMMENT):
                yield token.start[0], token.string


def test_no_file_under_tflv_mentions_a_flag():
    """tflv knows nothing of the trainer's command line: its messages and docs name config
    fields, never `--flags`."""
    found = [f"{path.relative_to(TFLV.parent)}:{line}: {text.strip()[:80]}"
             for path in sorted(TFLV.rglob("*.py")) for line, text in _strings_and_comments(path)
             if "flag" in text.lower() or any(
                 part[:1].isalpha() for part in text.split("--")[1:])]
    assert not found, "\n".join(found)
