"""Notebook support: the cached corpus/model/index the notebooks share (``assets``). They
render with the apps' one HTML builder, :mod:`crossmodal.apps.report`."""
