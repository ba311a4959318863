"""The dashboard: one HTML page at ``/`` and the files it loads, Chart.js included.

Everything the page needs ships with the service (``static/``): no CDN, so it works on a
machine with no internet and shows the same thing everywhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from shared.http import problem

STATIC = (Path(__file__).parent / "static").resolve()
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}

router = APIRouter(tags=["dashboard"])


@router.get("/", summary="The dashboard", response_class=FileResponse, include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type=TYPES[".html"])


@router.get("/static/{name:path}", summary="The dashboard's files", include_in_schema=False)
def static_file(name: str) -> Response:
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in TYPES:
        return problem(404, "path.name", f"no file {name!r}")
    return FileResponse(path, media_type=TYPES[path.suffix])
