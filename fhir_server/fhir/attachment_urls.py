"""A document's `content.attachment.url` as IHE MHD wants it: an absolute URL of this
server (`<base>/Binary/<id>`), while the store keeps it relative (`Binary/<id>`), so that
what is stored does not depend on the address the server is reached by (pure).

On the way out the rewrite works on the JSON bytes: responses are spliced from the stored
bytes without parsing them, and compact JSON holds `"url":"Binary/` only where an element
named `url` starts with a relative Binary reference (inside a string, quotes are escaped).
On the way in, an absolute URL of this server is made relative again, so that a client
sending back what it read changes nothing."""

from __future__ import annotations

from typing import Any

_RELATIVE = b'"url":"Binary/'


def absolute_binary_urls(body: bytes, base: str) -> bytes:
    """The compact JSON `body` with every relative `Binary/` url made absolute."""
    if _RELATIVE not in body:
        return body
    return body.replace(_RELATIVE, b'"url":"' + base.rstrip("/").encode() + b"/Binary/")


def relative_binary_urls(resource: Any, base: str) -> Any:
    """A DocumentReference whose attachment urls name this server's Binaries absolutely,
    with those urls relative (any other resource or url unchanged)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "DocumentReference":
        return resource
    content = resource.get("content")
    if not isinstance(content, list):
        return resource
    prefix = base.rstrip("/") + "/Binary/"
    changed = False
    out_content = []
    for item in content:
        attachment = item.get("attachment") if isinstance(item, dict) else None
        url = attachment.get("url") if isinstance(attachment, dict) else None
        if isinstance(url, str) and url.startswith(prefix):
            item = {**item, "attachment": {**attachment, "url": "Binary/" + url[len(prefix) :]}}
            changed = True
        out_content.append(item)
    return {**resource, "content": out_content} if changed else resource
