"""Code mode (issue #20): the user's tools as a typed Python API that code in a kernel
calls (``from dodo_jupyter import tools``), and what a model reads to find them."""
