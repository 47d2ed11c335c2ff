"""Notebook support: the cached corpus/model/index the notebooks share (``assets``) and
the HTML display helpers they render with (``display``)."""
