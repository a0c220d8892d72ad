"""Printable asset labels: the tag in large type and a QR code that opens the asset's page."""
from __future__ import annotations

import io
from dataclasses import dataclass

from flask import current_app, url_for

from itops.assets.models import Asset


@dataclass(frozen=True)
class Label:
    tag: str
    name: str
    kind: str
    serial: str | None
    url: str
    qr_svg: str


def asset_url(asset: Asset) -> str:
    """An absolute link from ITOPS_BASE_URL, so a label printed today still scans right from any phone."""
    return current_app.config["ITOPS_BASE_URL"].rstrip("/") + url_for("assets.detail", asset_id=asset.id)


def qr_svg(text: str) -> str:
    """An inline SVG (no image files, no inline script): medium error correction survives a scuffed label."""
    import segno  # only label pages need it; the web workers' other requests never do

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False, svgns=True,
                                     title=None, desc=None, svgclass="qr", lineclass=None)
    return buffer.getvalue().decode()


def label_for(asset: Asset) -> Label:
    url = asset_url(asset)
    return Label(tag=asset.tag, name=asset.name, kind=asset.kind_enum.label, serial=asset.serial, url=url,
                 qr_svg=qr_svg(url))
