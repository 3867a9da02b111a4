"""The one hardened lxml parser configuration for untrusted XML (FHIR XML bodies, CDA
documents): no DTD loading, no entity resolution, no network, no huge trees. lxml parsers
must not be shared by threads parsing at once, so each thread gets its own."""

from __future__ import annotations

import threading

from lxml import etree

_LOCAL = threading.local()


def hardened_parser(*, keep_comments: bool) -> etree.XMLParser:
    """This thread's parser; comments and processing instructions are dropped unless
    `keep_comments` (a CDA keeps its document as written)."""
    key = "keep" if keep_comments else "drop"
    parser = getattr(_LOCAL, key, None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
            remove_comments=not keep_comments,
            remove_pis=not keep_comments,
        )
        setattr(_LOCAL, key, parser)
    return parser
