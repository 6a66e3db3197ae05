#!/usr/bin/env python3
"""Reads a signed SUNAT UBL 2.1 document (factura, boleta or credit note) with a third-party
reader, contaperu (PyPI, pinned in infra/local/requirements.txt), and prints as JSON what that
library read, so an end-to-end test can hold our own invoice against someone else's reading of
the XML we sent.

    read_ubl.py FILE.xml [--ruc SELLER_RUC] [--periodo AAAAMM]

contaperu reads into the books of one company (`libro`: its RUC, period and sales or purchases
book). By default the script reads twice: once with a neutral book to learn the seller and the
issue month, then as the seller's sales book for that month, so the library's own checks
(`observations`) are those of the issuer. --ruc / --periodo fix the book instead.

What contaperu reads (`contaperu.comprobantes.xml_ubl.parsear`, 14.2.0), printed here:
  * document: type (catalog 01: 01 factura, 03 boleta, 07 credit note), series, number, issue
    and due dates, currency, payment condition (Contado / Crédito and instalments);
  * seller and buyer: document type (catalog 06), number and legal name;
  * amounts: taxable base (IGV, code 1000), IGV, exempt (9997), unaffected (9998), export,
    ISC, ICBPER, other taxes, the per-tax-code sums of `cac:TaxTotal/cac:TaxSubtotal`, the
    payable total and `TaxInclusiveAmount`;
  * credit notes: the referenced document (type, series, number) and the reason (catalog 09
    code, description);
  * the description of the FIRST line only (`concepto`, cut to 100 characters);
  * the library's own checks of the document (`observations`: code, level, text; e.g.
    RUC_INVALIDO when a RUC fails SUNAT's check digit).

What it does NOT read, so this script does not print it either (compare those by other means):
  * the lines: no quantities, unit codes, unit prices, per-line values or taxes, SKUs, and no
    description but the first;
  * the signature: not the DigestValue ("valor resumen"), not the certificate;
  * addresses, e-mails, the amount in words (legend 1000), UBLVersionID/CustomizationID
    beyond the UBL version string, the issue time.

Exits 1 (message on stderr) when the library reads no document or reports a reading error.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from contaperu import __version__ as contaperu_version
from contaperu import api

# Any well-formed book will do for the first reading: only its checks depend on it.
NEUTRAL_BOOK = {"ruc": "00000000000", "razon_social": "", "periodo": "209912", "tipo": "venta"}


def read(xml: bytes, book: dict) -> dict:
    """The library's reading of one document as the given book."""
    document = api.leer_xml(base64.b64encode(xml).decode("ascii"), book, es_base64=True)
    reading = document.get("_lectura") or {}
    if reading.get("errores"):
        raise SystemExit(f"contaperu could not read the file: {reading['errores']}")
    documents = document.get("comprobantes") or []
    if len(documents) != 1:
        raise SystemExit(f"contaperu read {len(documents)} documents, expected 1")
    return documents[0]


def party(raw: dict | None) -> dict:
    raw = raw or {}
    return {
        "document_type": raw.get("tipo_doc", ""),
        "document_number": raw.get("doc", ""),
        "name": raw.get("nombre", ""),
    }


def summary(doc: dict, book: dict) -> dict:
    original = doc.get("datos_originales") or {}
    reason = original.get("motivo_nota") or {}
    summary = {
        "reader": {"library": "contaperu", "version": contaperu_version, "book": book},
        "ubl_version": original.get("ubl", ""),
        "root": original.get("raiz", ""),
        "document_type": doc.get("tipo_cp", ""),
        "series": doc.get("serie", ""),
        "number": doc.get("numero", ""),
        "issue_date": doc.get("fecha_emision"),
        "due_date": doc.get("fecha_vencimiento"),
        "currency": doc.get("moneda", ""),
        "payment": {
            "condition": doc.get("condicion_pago", ""),
            "form": original.get("forma_pago", ""),
            "instalments": doc.get("cuotas") or [],
            "pending_amount": doc.get("monto_pendiente"),
        },
        "seller": party(original.get("emisor")),
        "buyer": party(original.get("adquirente")),
        # Amounts as the library prints them: decimal strings, never floats.
        "amounts": {
            "taxable": doc.get("base_gravada"),
            "igv": doc.get("igv"),
            "exempt": doc.get("exonerado"),
            "unaffected": doc.get("inafecto"),
            "export": doc.get("exportacion"),
            "isc": doc.get("isc"),
            "icbper": doc.get("icbper"),
            "other_taxes": doc.get("otros"),
            "free_of_charge": original.get("gratuitas"),
            "prepaid": original.get("anticipo"),
            "tax_inclusive": original.get("tax_inclusive"),
            "total": doc.get("total"),
            # Tax code (catalog 05) -> [taxable amount, tax amount].
            "by_tax_code": original.get("tributos") or {},
        },
        "first_line_description": doc.get("concepto", ""),
        "observations": doc.get("observaciones") or [],
    }
    if summary["root"] == "CreditNote" or doc.get("ref_numero"):
        summary["credit_note"] = {
            "reason_code": doc.get("tipo_nota", ""),
            "reason": reason.get("descripcion", ""),
            "reference": {
                "document_type": doc.get("ref_tipo_cp", ""),
                "series": doc.get("ref_serie", ""),
                "number": doc.get("ref_numero", ""),
            },
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--ruc", help="the book's RUC (default: the seller's, as read)")
    parser.add_argument("--periodo", help="the book's period AAAAMM (default: the issue month)")
    args = parser.parse_args()
    xml = args.file.read_bytes()
    first = read(xml, NEUTRAL_BOOK)
    issued = str(first.get("fecha_emision") or "")
    seller = party((first.get("datos_originales") or {}).get("emisor"))
    book = {
        "ruc": args.ruc or seller["document_number"],
        "razon_social": seller["name"],
        "periodo": args.periodo or issued[:7].replace("-", ""),
        "tipo": "venta",
    }
    json.dump(summary(read(xml, book), book), sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
