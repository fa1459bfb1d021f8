"""The program's logo: a PNG or an SVG, recognised by its content (never its file name),
at most ``MAX_LOGO_BYTES``. A PNG must have a well-formed header and sensible dimensions. An
SVG is parsed without entities or external resources (defusedxml) and refused when it could
run or fetch anything: scripts, event handlers, foreign objects, HTML, processing
instructions, links or ``url()`` to anything but a fragment of itself. The bytes checked are
the bytes served (app/main/program.py), with a CSP that forbids scripts anyway."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from xml.etree.ElementTree import ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from sqlalchemy import select

from app.extensions import db
from app.models import ReferralProgramSettings
from app.models.program import MAX_LOGO_BYTES
from app.services.ops import audit
from app.services.program.identity import forget_identity

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 4096  # per side
SVG_NS = "http://www.w3.org/2000/svg"
XHTML_NS = "http://www.w3.org/1999/xhtml"
# Elements that run code or embed other documents, in any namespace (lower-cased).
_FORBIDDEN_ELEMENTS = {"script", "foreignobject", "iframe", "embed", "object", "handler"}
_ANIMATIONS = {"set", "animate", "animatemotion", "animatetransform", "animatecolor"}
_URL_REFERENCE = re.compile(r"url\s*\(\s*['\"]?\s*([^)'\"\s]*)", re.IGNORECASE)
# A CSS escape (hex digits and one optional space, or any one character): ``\75 rl(`` is
# ``url(`` and ``@\69mport`` is ``@import`` to a browser.
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})\s?|(.))", re.DOTALL)
NOT_AN_IMAGE = "Upload a PNG or SVG image: this file is neither."


class LogoRefused(Exception):
    """Why an upload cannot be the logo; nothing was changed."""


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()


def _namespace(name: str) -> str:
    return name[1:].split("}", 1)[0] if name.startswith("{") else ""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (checked: signature, chunk, CRC, end)."""
    header = data[8:33]
    if len(header) < 25 or header[:8] != b"\x00\x00\x00\rIHDR":
        raise LogoRefused("This PNG is damaged: its header is missing.")
    if zlib.crc32(header[4:21]) != struct.unpack(">I", header[21:25])[0]:
        raise LogoRefused("This PNG is damaged: its header does not check out.")
    if not data.endswith(b"\x00\x00\x00\x00IEND\xaeB`\x82"):
        raise LogoRefused("This PNG is incomplete: its end is missing.")
    width, height = struct.unpack(">II", header[8:16])
    if not (1 <= width <= MAX_PIXELS and 1 <= height <= MAX_PIXELS):
        raise LogoRefused(
            f"A logo is at most {MAX_PIXELS} by {MAX_PIXELS} pixels (this is {width} by {height})."
        )
    return width, height


def _css_unescaped(value: str) -> str:
    def character(match: re.Match) -> str:
        if match[2] is not None:
            return match[2]
        code = int(match[1], 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"

    return _CSS_ESCAPE.sub(character, value)


def _unsafe_reference(value: str) -> bool:
    targets = _URL_REFERENCE.findall(_css_unescaped(value))
    return any(not target.startswith("#") for target in targets)


class _Builder(TreeBuilder):
    """A tree builder that also notes processing instructions, wherever they are (one
    before the root, such as ``xml-stylesheet``, is not part of the tree)."""

    def __init__(self) -> None:
        super().__init__()
        self.instructions: list[str] = []

    def pi(self, target: str, text: str | None = None):
        self.instructions.append(target)
        return super().pi(target, text)


def _svg_problem(element) -> str | None:
    """What makes one element unsafe, or None."""
    tag = element.tag
    name = _local(tag)
    if name in _FORBIDDEN_ELEMENTS:
        return f"a <{name}> element is not allowed"
    if _namespace(tag) == XHTML_NS:
        return "HTML inside an SVG is not allowed"
    for attribute, value in element.attrib.items():
        attr = _local(attribute)
        if attr.startswith("on"):
            return f"event handlers ({attr}=) are not allowed"
        if attr == "href" and not value.strip().startswith("#"):
            return "links to other files or sites (href) are not allowed"
        if _unsafe_reference(value):
            return "references to other files or sites (url()) are not allowed"
        if name in _ANIMATIONS and attr == "attributename":
            target = _local(value.strip()).rpartition(":")[2]  # a QName: xlink:href is href
            if target == "href" or target.startswith("on"):
                return "animations that change links or handlers are not allowed"
    if (
        name == "style"
        and element.text
        and ("@import" in _css_unescaped(element.text).lower() or _unsafe_reference(element.text))
    ):
        return "stylesheets that import other files are not allowed"
    return None


def check_svg(data: bytes) -> None:
    """Raise ``LogoRefused`` unless ``data`` is an SVG document that is safe to serve."""
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException:
        raise LogoRefused("This SVG declares entities or a DTD, which are not allowed.") from None
    except (ParseError, ValueError):
        raise LogoRefused(NOT_AN_IMAGE) from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise LogoRefused(NOT_AN_IMAGE)
    if builder.instructions:
        raise LogoRefused(
            "This SVG cannot be used: processing instructions (such as a linked stylesheet) "
            "are not allowed."
        )
    for element in root.iter():
        if problem := _svg_problem(element):
            raise LogoRefused(f"This SVG cannot be used: {problem}.")


def logo_type(data: bytes) -> str:
    """The content type of an acceptable logo, or ``LogoRefused`` with what is wrong."""
    if not data:
        raise LogoRefused("Choose a file to upload.")
    if len(data) > MAX_LOGO_BYTES:
        raise LogoRefused(
            f"A logo is at most {MAX_LOGO_BYTES // 1024} KB (this file is "
            f"{-(-len(data) // 1024)} KB)."
        )
    if data.startswith(PNG_SIGNATURE):
        png_size(data)
        return "image/png"
    check_svg(data)
    return "image/svg+xml"


def _locked_settings() -> ReferralProgramSettings:
    return db.session.execute(
        select(ReferralProgramSettings).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def save_logo(data: bytes, *, actor_id: str | None) -> None:
    """Check ``data`` (``LogoRefused``: nothing changed) and make it the logo. Audited
    (``program.logo_changed``, with the old and new digests). Flushes."""
    content_type = logo_type(data)
    settings = _locked_settings()
    digest = hashlib.sha256(data).hexdigest()
    audit.record(
        "program.logo_changed",
        actor_id=actor_id,
        subject_type="settings",
        subject_id=settings.id,
        old_digest=settings.logo_digest,
        new_digest=digest,
        content_type=content_type,
        size=len(data),
    )
    settings.logo, settings.logo_type, settings.logo_digest = data, content_type, digest
    db.session.flush()
    forget_identity()


def remove_logo(*, actor_id: str | None) -> bool:
    """Remove the logo (False when there was none: nothing audited). Flushes."""
    settings = _locked_settings()
    if settings.logo_digest is None:
        return False
    audit.record(
        "program.logo_removed",
        actor_id=actor_id,
        subject_type="settings",
        subject_id=settings.id,
        old_digest=settings.logo_digest,
    )
    settings.logo = settings.logo_type = settings.logo_digest = None
    db.session.flush()
    forget_identity()
    return True


def stored_logo() -> tuple[bytes, str, str] | None:
    """The logo's bytes, content type and digest, or None."""
    row = db.session.execute(
        select(
            ReferralProgramSettings.logo,
            ReferralProgramSettings.logo_type,
            ReferralProgramSettings.logo_digest,
        )
    ).one()
    return None if row.logo is None else (row.logo, row.logo_type, row.logo_digest)
