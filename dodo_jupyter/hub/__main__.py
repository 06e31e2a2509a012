"""``python -m dodo_jupyter.hub``: run the hub catalog service (see docs/jupyterhub.md)."""

from . import main

if __name__ == "__main__":
    main()
