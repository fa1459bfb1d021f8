"""The program's logo: accepted by content (PNG header and size, SVG parsed safely), unsafe
SVGs refused whatever they are called, too-big files refused; saving and removing audited."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from app.models.program import MAX_LOGO_BYTES
from app.services.program.identity import program_identity
from app.services.program.logos import (
    LogoRefused,
    logo_type,
    remove_logo,
    save_logo,
    stored_logo,
)
from tests.images import png, svg


def test_a_png_and_a_plain_svg_are_recognised_by_their_content():
    assert logo_type(png()) == "image/png"
    assert logo_type(svg()) == "image/svg+xml"
    inkscape = svg(
        '<g inkscape:label="Layer 1" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape">'
        '<path id="p" d="M0 0h10v10z" style="fill:url(#grad)"/><use href="#p"/>'
        '<use xlink:href="#p"/></g>'
    )
    assert logo_type(inkscape) == "image/svg+xml"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Choose a file"),
        (b"GIF89a\x01\x00\x01\x00", "PNG or SVG"),
        (b"<html><body>hello</body></html>", "PNG or SVG"),
        (b"\xff\xd8\xff\xe0 a jpeg", "PNG or SVG"),
        (png()[:30], "damaged"),
        (png()[:-12], "incomplete"),
        (png(5000, 10), "at most 4096 by 4096 pixels"),
        (png(0, 10), "at most 4096 by 4096 pixels"),
        (b"<svg>not closed", "PNG or SVG"),
        (b'<svg xmlns="http://www.w3.org/1999/xhtml"></svg>', "PNG or SVG"),
    ],
)
def test_what_is_not_a_usable_image_is_refused_with_a_reason(data, message):
    with pytest.raises(LogoRefused, match=message):
        logo_type(data)


def test_a_damaged_png_header_is_refused():
    data = bytearray(png())
    data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    with pytest.raises(LogoRefused, match="damaged"):
        logo_type(bytes(data))


def test_a_file_over_the_size_limit_is_refused_whatever_it_holds():
    padding = "<!--" + "x" * MAX_LOGO_BYTES + "-->"
    with pytest.raises(LogoRefused, match="at most 200 KB"):
        logo_type(svg(padding))


@pytest.mark.parametrize(
    ("body", "root_attrs", "message"),
    [
        ("<script>alert(1)</script>", "", "<script>"),
        ('<script xlink:href="https://evil.example/x.js"/>', "", "<script>"),
        (
            '<html:script xmlns:html="http://www.w3.org/1999/xhtml">alert(1)</html:script>',
            "",
            "<script>",
        ),
        ("", ' onload="alert(1)"', "event handlers"),
        ('<circle r="1" ONCLICK="alert(1)"/>', "", "event handlers"),
        ('<image href="https://evil.example/track.png" width="1" height="1"/>', "", "href"),
        ('<a xlink:href="javascript:alert(1)"><text>x</text></a>', "", "href"),
        ('<use href="data:image/svg+xml;base64,PHN2Zz4="/>', "", "href"),
        (
            '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>',
            "",
            "<foreignobject>",
        ),
        ('<p xmlns="http://www.w3.org/1999/xhtml">html</p>', "", "HTML"),
        ('<rect style="fill: url(https://evil.example/p)"/>', "", "url()"),
        ("<rect fill=\"url( '//evil.example/p#x' )\"/>", "", "url()"),
        ("<style>@import 'https://evil.example/x.css';</style>", "", "import"),
        ("<style>rect { fill: url(http://evil.example/p) }</style>", "", "import"),
        ('<rect style="fill: \\75 rl(https://evil.example/p)"/>', "", "url()"),
        ('<rect fill="U\\52L(//evil.example/p#x)"/>', "", "url()"),
        ("<style>@\\69mport 'https://evil.example/x.css';</style>", "", "import"),
        ("<style>rect { fill: \\75\\72\\6c(http://evil.example/p) }</style>", "", "import"),
        ('<a href="#x"><set attributeName="href" to="javascript:alert(1)"/></a>', "", "animations"),
        ('<animate attributeName="onbegin" to="alert(1)"/>', "", "event handlers|animations"),
        (
            '<a href="#x"><set attributeName="xlink:href" to="javascript:alert(1)"/></a>',
            "",
            "animations",
        ),
        ('<animate attributeName=" xlink:onbegin" to="alert(1)"/>', "", "animations"),
        (
            '<iframe xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example"/>',
            "",
            "<iframe>",
        ),
        ("<g><?php echo 1; ?></g>", "", "processing instructions"),
    ],
)
def test_an_svg_that_could_run_or_fetch_anything_is_refused(body, root_attrs, message):
    with pytest.raises(LogoRefused, match=message) as refused:
        logo_type(svg(body, root_attrs))
    assert str(refused.value).startswith("This SVG cannot be used")


def test_an_svg_with_entities_a_dtd_or_a_linked_stylesheet_is_refused():
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&lol2;</text></svg>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>'
    )
    for data in (laughs, external):
        with pytest.raises(LogoRefused, match="DTD"):
            logo_type(data)
    stylesheet = (
        b'<?xml version="1.0"?><?xml-stylesheet href="https://evil.example/x.css"?>'
        b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    )
    with pytest.raises(LogoRefused, match="processing instructions"):
        logo_type(stylesheet)


def test_saving_a_logo_stores_it_with_its_digest_and_audits_the_change(admin_user):
    data = png()
    save_logo(data, actor_id=admin_user.id)
    db.session.commit()
    assert stored_logo() == (data, "image/png", hashlib.sha256(data).hexdigest())
    assert program_identity().logo_digest == hashlib.sha256(data).hexdigest()
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "program.logo_changed")
    ).one()
    assert entry.actor_id == admin_user.id
    assert entry.details["content_type"] == "image/png" and entry.details["size"] == len(data)

    assert remove_logo(actor_id=admin_user.id) is True
    db.session.commit()
    assert stored_logo() is None and program_identity().logo_digest is None
    assert remove_logo(actor_id=admin_user.id) is False


def test_a_refused_logo_changes_nothing(admin_user):
    save_logo(png(), actor_id=admin_user.id)
    db.session.commit()
    with pytest.raises(LogoRefused):
        save_logo(svg("<script>alert(1)</script>"), actor_id=admin_user.id)
    db.session.rollback()
    assert stored_logo()[1] == "image/png"
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert actions.count("program.logo_changed") == 1


@pytest.fixture
def admin_user():
    from tests.factories import make_user

    return make_user(is_admin=True)
