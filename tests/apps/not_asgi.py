"""A module whose ``app`` attribute is not an ASGI app at all."""

app = 42
