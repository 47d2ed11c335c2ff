from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from crossmodal.config import ConfigError, load_config, parse_overrides, to_dict


@dataclass
class Optim:
    lr: float = 1e-3
    steps: int = 10
    amp: Literal["none", "bf16", "fp16"] = "none"


@dataclass
class Model:
    name: str = "tiny"
    dim: int = 64
    pretrained: str | None = None
    overrides: dict = field(default_factory=dict)


@dataclass
class Root:
    seed: int = 0
    deterministic: bool = False
    losses: list[str] = field(default_factory=lambda: ["infonce"])
    optim: Optim = field(default_factory=Optim)
    model: Model = field(default_factory=Model)


def test_defaults_yaml_then_overrides(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("optim:\n  lr: 0.01\nmodel:\n  dim: 32\n  overrides: {width: 8}\n")
    cfg = load_config(
        Root,
        cfg_file,
        ["--optim.lr", "3e-4", "--steps=7", "--deterministic", "--losses", "[npair, circle]"],
    )
    assert cfg.optim.lr == pytest.approx(3e-4)  # "3e-4" is a string to YAML 1.1; we fix that
    assert cfg.optim.steps == 7  # bare name resolves when unique
    assert cfg.deterministic is True
    assert cfg.losses == ["npair", "circle"]
    assert cfg.model.dim == 32
    assert cfg.model.overrides == {"width": 8}
    assert cfg.model.name == "tiny"  # untouched default
    assert load_config(Root, None, ["--model.pretrained", "null"]).model.pretrained is None
    assert to_dict(cfg)["optim"] == {"lr": pytest.approx(3e-4), "steps": 7, "amp": "none"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--optim.lrr", "1"], "unknown option --optim.lrr"),
        (["--steps", "1.5"], "optim.steps must be an integer"),
        (["--amp", "fp8"], r"optim.amp must be one of \['none', 'bf16', 'fp16'\]"),
        (["--deterministic", "maybe"], "deterministic must be true or false"),
        (["steps", "3"], "expected --key value"),
    ],
)
def test_bad_overrides_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(Root, None, overrides)


@dataclass
class Inner:
    lr: float = 1.0


@dataclass
class TwoInner:
    a: Inner = field(default_factory=Inner)
    b: Inner = field(default_factory=Inner)


def test_ambiguous_bare_key() -> None:
    with pytest.raises(ConfigError, match=r"ambiguous; use one of: a\.lr, b\.lr"):
        load_config(TwoInner, None, ["--lr", "2"])


def test_unknown_yaml_key_and_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  learning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) optim.learning_rate"):
        load_config(Root, bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Root, broken)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Root, tmp_path / "missing.yaml")


def test_parse_overrides_forms() -> None:
    assert parse_overrides(["--a", "1", "--b=2", "--flag", "--c-d", "x"]) == [
        ("a", "1"),
        ("b", "2"),
        ("flag", "true"),
        ("c_d", "x"),
    ]


def test_naming_another_music_encoder_drops_the_default_towers_options() -> None:
    # The default model's music options (the clip summary) belong to audio_tiny: a run
    # that only names another encoder must build it, not fail on an unknown option.
    from crossmodal.config import load_config
    from crossmodal.model import CrossModalModel
    from crossmodal.training.config import DEFAULT_MUSIC_OVERRIDES, TrainConfig

    assert TrainConfig().model.music_overrides == DEFAULT_MUSIC_OVERRIDES
    # The vibe heads read the towers' clip views through dropout (docs/training.md).
    assert (TrainConfig().model.vibe_input, TrainConfig().model.vibe_dropout) == ("clip", 0.5)
    cfg = load_config(TrainConfig, overrides=["--model.music_encoder", "logmel_cnn"])
    assert cfg.model.music_overrides == {}
    model = CrossModalModel.from_config(cfg.model)
    assert model.encoders["music"].output_dim > 0
    # Options the user gives with it are kept (and checked by the encoder).
    cfg = load_config(
        TrainConfig,
        overrides=["--model.music_encoder", "logmel_cnn", "--model.music_overrides", "{}"],
    )
    assert cfg.model.music_overrides == {}
    tiny = load_config(TrainConfig, overrides=["--model.music_overrides", "{summary_lags: 50}"])
    assert tiny.model.music_overrides == {"summary_lags": 50}


def test_a_yaml_file_naming_another_music_encoder_keeps_only_its_own_options(
    tmp_path,
) -> None:
    # A config file's music_overrides merge over the default tower's; with another
    # encoder named, the default options the user did not touch are dropped and the
    # user's own are kept, so the encoder is not handed options it never heard of.
    from crossmodal.config import load_config
    from crossmodal.model import CrossModalModel
    from crossmodal.training.config import TrainConfig

    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  music_encoder: logmel_cnn\n  music_overrides: {n_mels: 48}\n")
    cfg = load_config(TrainConfig, path)
    assert cfg.model.music_overrides == {"n_mels": 48}
    model = CrossModalModel.from_config(cfg.model)
    assert model.encoders["music"].audio_spec.n_mels == 48
    # A default option given another value is the user's and stays.
    path.write_text("model:\n  music_encoder: logmel_cnn\n  music_overrides: {summary_lags: 7}\n")
    assert load_config(TrainConfig, path).model.music_overrides == {"summary_lags": 7}
