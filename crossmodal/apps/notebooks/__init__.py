"""Notebook support: the cached corpus/model/index the notebooks share (``assets``) and
notebook 03's tuning protocol (``loss_zoo``). They render with the apps' one HTML
builder, :mod:`crossmodal.apps.report`."""
