"""Small ASGI apps the cluster tests run as real worker processes."""
