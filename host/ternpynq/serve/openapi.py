"""The service's OpenAPI 3.0 description (served at /openapi.json)."""

from __future__ import annotations

import ternpynq

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def spec(token: bool = False) -> dict:
    """The description; ``token``: the server requires a bearer token (all but /healthz)."""
    prediction = {
        "type": "object",
        "required": ["label", "index", "probability"],
        "properties": {
            "label": {"type": "string"},
            "index": {"type": "integer"},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    result = {
        "type": "object",
        "required": ["image", "top"],
        "properties": {"image": {"type": "string"}, "top": {"type": "array", "items": prediction}},
    }
    errors = {
        "400": {"description": "bad input (not an image, bad parameter)", **_json(_ERROR)},
        "413": {"description": "upload too large", **_json(_ERROR)},
        "503": {"description": "model or device unavailable", **_json(_ERROR)},
    }
    if token:
        errors["401"] = {"description": "missing or wrong bearer token", **_json(_ERROR)}
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "ternpynq classification service",
            "version": ternpynq.__version__,
            "description": "Classify images with a ternary, PE-wise pruned CNN.",
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": {"description": "alive", **_json({"type": "object"})}},
                }
            },
            "/v1/model": {
                "get": {
                    "summary": "The loaded model",
                    "responses": {
                        "200": {
                            "description": "model, source (about), labels, input, compression",
                            **_json({"type": "object"}),
                        },
                        **{k: v for k, v in errors.items() if k in ("401", "503")},
                    },
                }
            },
            "/v1/classify": {
                "post": {
                    "summary": "Classify one or more images",
                    "parameters": [
                        {
                            "name": "top",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": 16,
                                            "items": {"type": "string", "format": "binary"},
                                        }
                                    },
                                }
                            },
                            "image/*": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "top-k labels per image",
                            **_json(
                                {
                                    "type": "object",
                                    "required": ["model", "backend", "results"],
                                    "properties": {
                                        "model": {"type": "string"},
                                        "backend": {"type": "string"},
                                        "results": {"type": "array", "items": result},
                                    },
                                }
                            ),
                        },
                        **errors,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
                }
            }
        },
    }
    if token:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
