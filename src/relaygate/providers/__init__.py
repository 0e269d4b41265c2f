"""Upstream kinds: each builds its upstream requests and reads its responses; none knows about keys,
money or storage. ``registry.py`` is the one place that names them."""
