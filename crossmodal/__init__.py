"""crossmodal: video and music in one learned embedding space.

The front door for Python users (each name is imported on first use, so
``import crossmodal`` stays fast and loads no torch, decoder or faiss)::

    import crossmodal

    rec = crossmodal.Recommender.load("index")          # a folder made by `crossmodal index`
    for match in rec.recommend_music("my_video.mp4", k=5):
        print(match.rank, match.path, match.score)

    model = crossmodal.load_trained_model("runs/my_run")  # a run folder or model.pt
    loss = crossmodal.create_loss("info_nce")               # the loss family, by name
    encoder = crossmodal.create_encoder("video_tiny")       # the encoder registry

What each name is: ``Recommender`` (music for a video, videos for music, from an index),
``CrossModalModel``/``ModelConfig`` (the two towers and the shared space),
``load_trained_model`` (a trained model from a run folder or file),
``create_encoder``/``list_encoders``, ``create_loss``/``list_losses``,
``create_miner``/``list_miners`` (the registries), ``PKSampler`` and
``CrossBatchMemory`` (sampling), ``evaluate_embeddings`` (retrieval metrics both ways),
``train``/``TrainConfig`` (the trainer). Everything else lives in the sub-packages
(see docs/architecture.md).
"""

from __future__ import annotations

from crossmodal.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Recommender": "crossmodal.retrieval.recommender",
    "CrossModalModel": "crossmodal.model",
    "ModelConfig": "crossmodal.model",
    "load_trained_model": "crossmodal.inference",
    "create_encoder": "crossmodal.encoders",
    "list_encoders": "crossmodal.encoders",
    "create_loss": "crossmodal.losses",
    "list_losses": "crossmodal.losses",
    "create_miner": "crossmodal.sampling",
    "list_miners": "crossmodal.sampling",
    "PKSampler": "crossmodal.sampling",
    "CrossBatchMemory": "crossmodal.sampling",
    "evaluate_embeddings": "crossmodal.evaluation.crossmodal_eval",
    "train": "crossmodal.training.trainer",
    "TrainConfig": "crossmodal.training.config",
}

__all__ = ["__version__", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
