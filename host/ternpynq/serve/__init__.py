"""The HTTP service: image classification over JSON (Flask app factory)."""

from ternpynq.serve.app import create_app

__all__ = ["create_app"]
