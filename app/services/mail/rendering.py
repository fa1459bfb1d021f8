"""Mails rendered from templates/mail/: a plain-text and an HTML part over a shared layout.

``templates/mail/<name>.txt`` defines ``{% block subject %}`` and ``{% block body %}`` over
``mail/_layout.txt``; ``templates/mail/<name>.html`` defines ``{% block body %}`` over
``mail/_layout.html``. Both get the caller's context plus ``program_name``, ``absolute_url``
and ``unsubscribe_url`` (None for account mails). Rendered from the app's Jinja environment
but without request context processors, so a job renders exactly as a request does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from app.services.program.identity import program_name


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def absolute_url(endpoint: str, **values: Any) -> str:
    """The URL of ``endpoint`` at ``PUBLIC_BASE_URL``, in a request or not (jobs have none)."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


def render_mail(
    template: str, context: Mapping[str, Any], unsubscribe_url: str | None = None
) -> RenderedMail:
    """Render ``mail/<template>.txt`` (subject and text) and ``mail/<template>.html``.
    Raises ``jinja2.TemplateNotFound`` for an unknown template."""
    env = current_app.jinja_env
    values = {
        **context,
        "program_name": program_name(),
        "absolute_url": absolute_url,
        "unsubscribe_url": unsubscribe_url,
    }
    text_template = env.get_template(f"mail/{template}.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(values)))
    return RenderedMail(
        subject=" ".join(subject.split()),  # one line, whatever the template's spacing
        text=text_template.render(values),
        html=env.get_template(f"mail/{template}.html").render(values),
    )
