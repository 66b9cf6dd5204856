"""The OpenAPI 3.1 document at ``/api/v1/openapi.json`` and a browsable page at
``/api/v1/docs`` (Swagger UI, served from the package: no CDN, works offline)."""

from __future__ import annotations

import copy
from typing import Any

from flask import Response, current_app, jsonify

from .blueprint import bp, spec
from .problems import MEDIA_TYPE

DOCUMENT = "blink_api_openapi"


def document() -> dict[str, Any]:
    """The document SpecTree generates, with error answers as problem+json and the
    server's path; built once per app."""
    cached = current_app.extensions.get(DOCUMENT)
    if cached is None:
        cached = copy.deepcopy(spec.spec)
        for operations in cached["paths"].values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if status.startswith(("4", "5")) and "application/json" in content:
                        content[MEDIA_TYPE] = content.pop("application/json")
        current_app.extensions[DOCUMENT] = cached
    return cached  # type: ignore[no-any-return]


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())


@bp.get("/docs")
def docs() -> Response:
    page = spec.config.page_templates["swagger"].format(
        spec_url="/api/v1/openapi.json", spec_path="api/v1", **spec.config.swagger_oauth2_config()
    )
    # The page bundles Swagger UI (about 2 MB): let browsers keep it for an hour.
    return Response(page, mimetype="text/html", headers={"Cache-Control": "public, max-age=3600"})
