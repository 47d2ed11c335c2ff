"""Music encoders; importing this package registers them.

Families: a compact PANN-style log-mel CNN, transformers AST (log-mel) and
wav2vec 2.0 / HuBERT (waveform), a network over librosa descriptors, ``audio_tiny``, and
the pretrained musicnn taggers (``musicnn_msd``, ``musicnn_mtt``, vgg variants).
"""

from __future__ import annotations

from crossmodal.encoders.music.ast import ASTEncoder, build_ast
from crossmodal.encoders.music.descriptor_encoder import DescriptorEncoder
from crossmodal.encoders.music.descriptors import compute_descriptors, descriptor_names
from crossmodal.encoders.music.logmel_cnn import LogMelCNN
from crossmodal.encoders.music.musicnn import REGISTERED as MUSICNN_REGISTERED
from crossmodal.encoders.music.musicnn import (
    MusicnnEncoder,
    musicnn_builder,
    musicnn_description,
    musicnn_weights,
)
from crossmodal.encoders.music.tiny import MusicTiny
from crossmodal.encoders.music.wav2vec2 import (
    WaveformTransformerEncoder,
    waveform_transformer_builder,
)
from crossmodal.encoders.registry import register_encoder

register_encoder(
    "audio_tiny",
    MusicTiny,
    modality="music",
    description="log-mel conv folding frequency + temporal convs; trains on a CPU",
)
register_encoder(
    "logmel_cnn",
    LogMelCNN,
    modality="music",
    description="PANN Cnn10-style CNN on a torchaudio log-mel",
)
register_encoder(
    "ast",
    build_ast,
    modality="music",
    description="transformers Audio Spectrogram Transformer on a log-mel",
    builds_from_pretrained=True,
)
register_encoder(
    "wav2vec2",
    waveform_transformer_builder("Wav2Vec2Model", "Wav2Vec2Config"),
    modality="music",
    description="transformers wav2vec 2.0 on the waveform, mean over time",
    builds_from_pretrained=True,
)
register_encoder(
    "hubert",
    waveform_transformer_builder("HubertModel", "HubertConfig"),
    modality="music",
    description="transformers HuBERT on the waveform, mean over time",
    builds_from_pretrained=True,
)
register_encoder(
    "descriptors",
    DescriptorEncoder,
    modality="music",
    description="small network over librosa tempo/onset/beat/chroma/MFCC/contrast",
)
for _name, (_arch, _dataset) in MUSICNN_REGISTERED.items():
    register_encoder(
        _name,
        musicnn_builder(_arch, _dataset),
        modality="music",
        description=musicnn_description(_arch, _dataset),
        load_pretrained=musicnn_weights,
    )

__all__ = [
    "ASTEncoder",
    "DescriptorEncoder",
    "LogMelCNN",
    "MusicTiny",
    "MusicnnEncoder",
    "WaveformTransformerEncoder",
    "compute_descriptors",
    "descriptor_names",
]
