"""Jinja2 rendering with autoescaping, translations and the portal's security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal.i18n import translations

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Nothing is loaded from elsewhere, nothing runs inline, forms post only here.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def make_environment() -> Environment:
    """Templates are HTML: autoescaping is on for every one of them (``.html`` or not)."""
    return Environment(loader=FileSystemLoader(TEMPLATES),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class Renderer:
    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or make_environment()

    def page(self, template: str, lang: str, status: int = 200, **context: Any) -> web.Response:
        """Render ``template`` in ``lang``; ``_`` and ``ngettext`` are the translators."""
        tr = translations(lang)
        html = self.env.get_template(template).render(
            _=tr.gettext, ngettext=tr.ngettext, lang=lang, **context)
        return web.Response(text=html, status=status, content_type="text/html",
                            charset="utf-8", headers=SECURITY_HEADERS)
