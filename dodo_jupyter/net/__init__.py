"""Outbound network policy: which URLs dodo_jupyter may talk to."""
