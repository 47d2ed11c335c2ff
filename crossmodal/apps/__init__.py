"""Applications built on the crossmodal library: the command line, the demo and its
report, notebook support (and the web app). They import the library; the library never
imports them (tests/test_layers.py checks)."""
