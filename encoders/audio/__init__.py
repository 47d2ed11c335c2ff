"""Music encoders; importing this package registers them.

Families: a compact PANN-style log-mel CNN, transformers AST (log-mel) and
wav2vec 2.0 / HuBERT (waveform), a network over librosa descriptors, ``audio_tiny``, and
the pretrained musicnn taggers (``musicnn_msd``, ``musicnn_mtt``, vgg variants).
"""

from __future__ import annotations

from crossmodal.encoders.audio.ast import ASTEncoder, build_ast
from crossmodal.encoders.audio.descriptor_encoder import DescriptorEncoder
from crossmodal.encoders.audio.descriptors import compute_descriptors, descriptor_names
from crossmodal.encoders.audio.logmel_cnn import LogMelCNN
from crossmodal.encoders.audio.musicnn import REGISTERED as MUSICNN_REGISTERED
from crossmodal.encoders.audio.musicnn import (
    MusicnnEncoder,
    musicnn_builder,
    musicnn_description,
)
from crossmodal.encoders.audio.tiny import AudioTiny
from crossmodal.encoders.audio.wav2vec2 import (
    WaveformTransformerEncoder,
    waveform_transformer_builder,
)
from crossmodal.encoders.registry import register_encoder

register_encoder(
    "audio_tiny",
    AudioTiny,
    modality="audio",
    description="log-mel conv folding frequency + temporal convs; trains on a CPU",
)
register_encoder(
    "logmel_cnn",
    LogMelCNN,
    modality="audio",
    description="PANN Cnn10-style CNN on a torchaudio log-mel",
)
register_encoder(
    "ast",
    build_ast,
    modality="audio",
    description="transformers Audio Spectrogram Transformer on a log-mel",
)
register_encoder(
    "wav2vec2",
    waveform_transformer_builder("Wav2Vec2Model", "Wav2Vec2Config"),
    modality="audio",
    description="transformers wav2vec 2.0 on the waveform, mean over time",
)
register_encoder(
    "hubert",
    waveform_transformer_builder("HubertModel", "HubertConfig"),
    modality="audio",
    description="transformers HuBERT on the waveform, mean over time",
)
register_encoder(
    "descriptors",
    DescriptorEncoder,
    modality="audio",
    description="small network over librosa tempo/onset/beat/chroma/MFCC/contrast",
)
for _name, (_arch, _dataset) in MUSICNN_REGISTERED.items():
    register_encoder(
        _name,
        musicnn_builder(_arch, _dataset),
        modality="audio",
        description=musicnn_description(_arch, _dataset),
    )

__all__ = [
    "ASTEncoder",
    "AudioTiny",
    "DescriptorEncoder",
    "LogMelCNN",
    "MusicnnEncoder",
    "WaveformTransformerEncoder",
    "compute_descriptors",
    "descriptor_names",
]
