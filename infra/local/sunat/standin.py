#!/usr/bin/env python3
"""A local stand-in for SUNAT's billService, for the local stack and the end-to-end tests.

It speaks SOAP 1.1 like SUNAT (or an OSE with the same WSDL) at ``/billService``:

- ``sendBill``: checks the WS-Security user and password, the zip's name
  (``{RUC}-{01|03|07|08}-{series}-{number}.zip``) and that it holds one XML of the same name,
  verifies the document's XML signature (``xmlsec1 --verify`` with the certificate embedded in
  the document), its basic structure (root Invoice/CreditNote/DebitNote by type,
  UBLVersionID 2.1, CustomizationID 2.0, ID = the file name's series-number, supplier RUC = the
  file name's RUC, tax and payable totals), and answers with a CDR: ``R-{stem}.zip`` holding
  ``R-{stem}.xml``, an ``ApplicationResponse`` signed with this stand-in's own self-signed
  "SUNAT" certificate (made with openssl at start, kept in the state directory).
- ``sendSummary`` (RC/RA/RR files): same checks of credentials, zip and signature; answers a
  ticket. ``getStatus``: statusCode 0 (or 99 when the summary's signature failed) with a CDR.
- ``GET /billService?wsdl``: a small WSDL of the three operations.

Exceptions (SUNAT's codes 0100–1999) are SOAP faults (HTTP 500, ``soap-env:Client.0151``);
rejections (2000–3999) are CDRs with that ResponseCode; a signature that does not verify is
rejection 2335 ("El documento electrónico ingresado ha sido alterado"). Codes from SUNAT's
"Listado de códigos de error" (see shared/sunat-soap/src/codes.rs).

Control API for the tests (JSON):

- ``POST /_control/rules`` ``{"buyer_document": "20601234567", "outcome": "accept" | "observe"
  | "reject" | "unavailable" | "fault", "code": "2017", "description": "...", "times": 1}``:
  sendBills whose buyer (AccountingCustomerParty's ID) matches get that outcome (no
  ``buyer_document``: any buyer), ``times`` times (absent: always), then the next matching rule
  or the default, accept. Rules are tried oldest first. ``observe`` adds the note ``{code} -
  ...`` (default 4287) to an accepted CDR; ``reject`` answers a CDR with ResponseCode ``code``
  (default 2017), or a fault when ``"as": "fault"``; ``unavailable`` answers the fault
  ``soap-env:Server.{code}`` (default 0130), or, when ``code`` is 502/503/504, that HTTP status
  with no SOAP body; ``fault`` answers ``soap-env:Client.{code}`` (default 0306). The checks
  above still come first for accept/observe/reject; unavailable and fault answer before them
  (but after the credentials and the zip).
- ``GET /_control/rules``, ``DELETE /_control/rules`` (all of them).
- ``GET /_control/received``: every call, oldest first: operation, file_name, document_id,
  supplier_ruc, buyer_document, signature_valid (true/false, null when not checked), outcome
  (accepted, observed, rejected, unavailable, fault), code, http_status, at.
  ``DELETE /_control/received`` forgets them.
- ``GET /_control/health``: 200.

    standin.py --port 8099 --state-dir .local/dev/sunat --credentials .local/dev/sunat/credentials.json [--seed infra/local/seed.json]

The credentials file holds ``{"username": ..., "password": ...}``; when it does not exist it is
created with the seed's first RUC followed by ``MODDATOS`` (SUNAT's SOL user is ``{RUC}{USER}``)
and a random password. Needs ``xmlsec1`` and ``openssl`` on PATH (infra/local/lib.sh:
ensure_debian_packages). Standard library only otherwise.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICE = "http://service.sunat.gob.pe"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
DS = "http://www.w3.org/2000/09/xmldsig#"
UBL_ROOTS = {
    "01": ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "Invoice", "Factura"),
    "03": ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "Invoice", "Boleta de Venta"),
    "07": ("urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2", "CreditNote", "Nota de Credito"),
    "08": ("urn:oasis:names:specification:ubl:schema:xsd:DebitNote-2", "DebitNote", "Nota de Debito"),
}
SUNAT_RUC = "20131312955"
BILL_NAME = re.compile(r"^(\d{11})-(01|03|07|08)-([A-Z0-9]{4})-(\d{1,8})\.zip$")
SUMMARY_NAME = re.compile(r"^(\d{11})-(RC|RA|RR)-(\d{8})-(\d{1,5})\.zip$")
MAX_BODY = 20 * 1024 * 1024
MAX_XML = 10 * 1024 * 1024

# The texts of the codes this stand-in answers with, from SUNAT's list.
CODES = {
    "0101": "El encabezado de seguridad es incorrecto",
    "0102": "Usuario o contraseña incorrectos",
    "0127": "El ticket no existe",
    "0130": "El sistema no puede responder su solicitud. (No se pudo obtener el ticket de proceso)",
    "0151": "El nombre del archivo ZIP es incorrecto",
    "0155": "El archivo ZIP esta vacio",
    "0156": "El archivo ZIP esta corrupto",
    "0157": "El archivo ZIP no contiene comprobantes",
    "0158": "El archivo ZIP contiene demasiados comprobantes para este tipo de envío",
    "0160": "El archivo XML esta vacio",
    "0161": "El nombre del archivo XML no coincide con el nombre del archivo ZIP",
    "0301": "Elemento raiz del xml no esta definido",
    "0306": "No se puede leer (parsear) el archivo XML",
    "1003": "InvoiceTypeCode - El valor del tipo de documento es invalido o no coincide con el nombre del archivo",
    "1034": "Número de RUC del nombre del archivo no coincide con el consignado en el contenido del archivo XML",
    "1049": "ID - Serie y Número del archivo no coincide con el consignado en el contenido del XML.",
    "1059": "El XML no contiene firma digital.",
    "2017": "El numero de documento de identidad del receptor debe ser RUC",
    "2044": "PayableAmount es obligatorio",
    "2049": "TaxAmount es obligatorio",
    "2072": "CustomizationID - La versión del documento no es la correcta",
    "2073": "El XML no existe informacion de CustomizationID",
    "2074": "UBLVersionID - La versión del UBL no es correcta",
    "2075": "El XML no contiene el tag o no existe informacion de UBLVersionID",
    "2335": "El documento electrónico ingresado ha sido alterado",
    "4287": "El precio unitario de la operación que está informando difiere de los cálculos realizados en base a la cantidad, valor unitario, tasa de descuentos y cargos",
}


class Fault(Exception):
    """An exception: the SOAP fault soap-env:{Client|Server}.{code}."""

    def __init__(self, code: str, text: str | None = None, server: bool = False):
        super().__init__(code)
        self.code = code
        self.text = text or CODES.get(code, "Error")
        self.server = server


class Rejection(Exception):
    """A rejection: a CDR whose ResponseCode is the code."""

    def __init__(self, code: str, text: str | None = None):
        super().__init__(code)
        self.code = code
        self.text = text or CODES.get(code, "Rechazado")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=-5)))  # Lima, no DST


def text_of(element: ET.Element | None, path: str) -> str | None:
    found = element.find(path, {"cac": CAC, "cbc": CBC}) if element is not None else None
    return found.text.strip() if found is not None and found.text else None


# ---- signatures (xmlsec1)


class Unsigned(Exception):
    """The document has no ds:Signature at all."""


def verify_signature(root: ET.Element, xml: bytes) -> tuple[bool, str]:
    """Whether the document's enveloped signature verifies with its embedded certificate."""
    signatures = root.findall(f".//{{{DS}}}Signature")
    if not signatures:
        raise Unsigned()
    if len(signatures) > 1:
        return False, "more than one ds:Signature"
    references = signatures[0].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if [r.get("URI") for r in references] != [""]:
        # A signature over a part of the document does not vouch for the rest.
        return False, 'the signature must have one Reference, URI=""'
    if signatures[0].find(f".//{{{DS}}}X509Certificate") is None:
        return False, "no ds:X509Certificate in the signature"
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        f.write(xml)
        f.flush()
        # --insecure: the embedded certificate is taken as it is (no chain to a trusted root).
        run = subprocess.run(
            ["xmlsec1", "--verify", "--insecure", "--enabled-key-data", "x509", f.name],
            capture_output=True, text=True, timeout=30,
        )
    if run.returncode == 0:
        return True, "ok"
    lines = run.stderr.strip().splitlines()
    return False, next((line for line in lines if "error=" in line), lines[-1] if lines else "xmlsec1 failed")


class Signer:
    """The stand-in's "SUNAT" key and self-signed certificate, made once in the state dir."""

    def __init__(self, state_dir: str):
        self.key = os.path.join(state_dir, "sunat-standin.key")
        self.cert = os.path.join(state_dir, "sunat-standin.crt")
        if not (os.path.exists(self.key) and os.path.exists(self.cert)):
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                 "-subj", "/C=PE/O=SUNAT stand-in/CN=SUNAT stand-in (local tests only)",
                 "-keyout", self.key, "-out", self.cert],
                check=True, capture_output=True, timeout=60,
            )

    def sign(self, template: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            src, out = os.path.join(tmp, "in.xml"), os.path.join(tmp, "out.xml")
            with open(src, "w", encoding="utf-8") as f:
                f.write(template)
            subprocess.run(
                ["xmlsec1", "--sign", "--privkey-pem", f"{self.key},{self.cert}", "--output", out, src],
                check=True, capture_output=True, timeout=30,
            )
            with open(out, "rb") as f:
                return f.read()


SIGNATURE_TEMPLATE = f"""<ds:Signature Id="SignSUNAT">
<ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
<ds:Reference URI="">
<ds:Transforms><ds:Transform Algorithm="{DS}enveloped-signature"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
<ds:DigestValue/>
</ds:Reference>
</ds:SignedInfo>
<ds:SignatureValue/>
<ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>
</ds:Signature>"""


def cdr_zip(signer: Signer, stem: str, reference: str, issuer: str, buyer: str | None,
            code: str, description: str, notes: list[str]) -> tuple[str, bytes]:
    """A signed ApplicationResponse, zipped as SUNAT does (with a dummy/ folder entry)."""
    moment = now()
    note_xml = "".join(f"<cbc:Note>{escape(n)}</cbc:Note>" for n in notes)
    recipient = (
        f"<cac:RecipientParty><cac:PartyIdentification><cbc:ID>{escape(buyer)}</cbc:ID>"
        f"</cac:PartyIdentification></cac:RecipientParty>" if buyer else ""
    )
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<ar:ApplicationResponse xmlns:ar="urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2" xmlns:cac="{CAC}" xmlns:cbc="{CBC}" xmlns:ext="urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2" xmlns:ds="{DS}">
<ext:UBLExtensions><ext:UBLExtension><ext:ExtensionContent>{SIGNATURE_TEMPLATE}</ext:ExtensionContent></ext:UBLExtension></ext:UBLExtensions>
<cbc:UBLVersionID>2.0</cbc:UBLVersionID>
<cbc:CustomizationID>1.0</cbc:CustomizationID>
<cbc:ID>{int(moment.timestamp() * 1000)}</cbc:ID>
<cbc:IssueDate>{moment:%Y-%m-%d}</cbc:IssueDate>
<cbc:IssueTime>{moment:%H:%M:%S}</cbc:IssueTime>
<cbc:ResponseDate>{moment:%Y-%m-%d}</cbc:ResponseDate>
<cbc:ResponseTime>{moment:%H:%M:%S}</cbc:ResponseTime>
{note_xml}
<cac:SenderParty><cac:PartyIdentification><cbc:ID>{SUNAT_RUC}</cbc:ID></cac:PartyIdentification></cac:SenderParty>
<cac:ReceiverParty><cac:PartyIdentification><cbc:ID>{escape(issuer)}</cbc:ID></cac:PartyIdentification></cac:ReceiverParty>
<cac:DocumentResponse>
<cac:Response><cbc:ReferenceID>{escape(reference)}</cbc:ReferenceID><cbc:ResponseCode>{escape(code)}</cbc:ResponseCode><cbc:Description>{escape(description)}</cbc:Description></cac:Response>
<cac:DocumentReference><cbc:ID>{escape(reference)}</cbc:ID></cac:DocumentReference>
{recipient}
</cac:DocumentResponse>
</ar:ApplicationResponse>
"""
    signed = signer.sign(xml)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("dummy/", b"")
        z.writestr(f"R-{stem}.xml", signed)
    return f"R-{stem}.zip", buffer.getvalue()


# ---- the documents


def open_zip(file_name: str, content: str) -> tuple[str, bytes]:
    """The one XML in the zip, named like the zip (SUNAT's exceptions otherwise)."""
    try:
        raw = base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Fault("0156")
    if not raw:
        raise Fault("0155")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            entries = [i for i in z.infolist() if not i.is_dir()]
            if not entries:
                raise Fault("0155")
            xmls = [i for i in entries if i.filename.lower().endswith(".xml")]
            if not xmls:
                raise Fault("0157")
            if len(xmls) > 1:
                raise Fault("0158")
            stem = file_name[: -len(".zip")]
            if os.path.basename(xmls[0].filename) != f"{stem}.xml":
                raise Fault("0161")
            if xmls[0].file_size > MAX_XML:
                raise Fault("0156", "El XML es demasiado grande")
            xml = z.read(xmls[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError):
        raise Fault("0156")
    if not xml.strip():
        raise Fault("0160")
    return stem, xml


def parse_xml(xml: bytes) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError:
        raise Fault("0306")


def check_structure(root: ET.Element, doc_type: str, ruc: str, series: str, number: str) -> None:
    """Basic structure; exceptions raise Fault, rejections raise Rejection."""
    ns, name, _ = UBL_ROOTS[doc_type]
    if root.tag != f"{{{ns}}}{name}":
        raise Fault("1003" if root.tag.endswith(("Invoice", "CreditNote", "DebitNote")) else "0301")
    document_id = text_of(root, "cbc:ID")
    if document_id is None or document_id != f"{series}-{number}":
        raise Fault("1049", f"{CODES['1049']} (file {series}-{number}, XML {document_id})")
    if text_of(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID") != ruc:
        raise Fault("1034")
    ubl = text_of(root, "cbc:UBLVersionID")
    if ubl is None:
        raise Rejection("2075")
    if ubl != "2.1":
        raise Rejection("2074")
    customization = text_of(root, "cbc:CustomizationID")
    if customization is None:
        raise Rejection("2073")
    if customization != "2.0":
        raise Rejection("2072")
    if text_of(root, "cac:TaxTotal/cbc:TaxAmount") is None:
        raise Rejection("2049")
    total = "cac:RequestedMonetaryTotal" if doc_type == "08" else "cac:LegalMonetaryTotal"
    if text_of(root, f"{total}/cbc:PayableAmount") is None:
        raise Rejection("2044")


# ---- the service


class Service:
    def __init__(self, credentials: dict, signer: Signer):
        self.credentials = credentials
        self.signer = signer
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.received: list[dict] = []
        self.tickets: dict[str, dict] = {}
        self.next_rule = 1

    # control

    def add_rule(self, rule: dict) -> dict:
        outcome = rule.get("outcome")
        if outcome not in ("accept", "observe", "reject", "unavailable", "fault"):
            raise ValueError("outcome must be accept, observe, reject, unavailable or fault")
        code = rule.get("code")
        if code is not None:
            code = str(code)
            if not code.isdigit() or len(code) > 4:
                raise ValueError("code must be SUNAT's code, up to four digits")
            if not (outcome == "unavailable" and code in ("502", "503", "504")):
                code = code.zfill(4)
        times = rule.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError("times must be a positive integer (absent: always)")
        buyer = rule.get("buyer_document")
        if buyer is not None and not isinstance(buyer, str):
            raise ValueError("buyer_document must be a string")
        if rule.get("as") not in (None, "cdr", "fault"):
            raise ValueError('as must be "cdr" or "fault"')
        with self.lock:
            stored = {
                "id": self.next_rule, "buyer_document": buyer, "outcome": outcome, "code": code,
                "description": rule.get("description"), "times": times, "remaining": times,
                "as": rule.get("as", "cdr"),
            }
            self.next_rule += 1
            self.rules.append(stored)
            return stored

    def take_rule(self, buyer: str | None) -> dict | None:
        with self.lock:
            for rule in self.rules:
                if rule["remaining"] == 0:
                    continue
                if rule["buyer_document"] not in (None, buyer):
                    continue
                if rule["remaining"] is not None:
                    rule["remaining"] -= 1
                return dict(rule)
        return None

    def record(self, entry: dict) -> None:
        entry["at"] = now().isoformat(timespec="milliseconds")
        with self.lock:
            self.received.append(entry)

    # SOAP

    def check_credentials(self, envelope: ET.Element) -> None:
        token = envelope.find(f"{{{SOAP_ENV}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        if token is None:
            raise Fault("0101")
        user = token.findtext(f"{{{WSSE}}}Username", "").strip()
        password = token.findtext(f"{{{WSSE}}}Password", "")
        ok_user = secrets.compare_digest(user.encode(), self.credentials["username"].encode())
        ok_password = secrets.compare_digest(password.encode(), self.credentials["password"].encode())
        if not (ok_user and ok_password):
            raise Fault("0102")

    def send_bill(self, call: ET.Element, entry: dict) -> tuple[int, str]:
        file_name = (call.findtext("fileName") or "").strip()
        entry["file_name"] = file_name
        match = BILL_NAME.match(file_name)
        if not match:
            raise Fault("0151")
        ruc, doc_type, series, number = match.groups()
        stem, xml = open_zip(file_name, call.findtext("contentFile") or "")
        root = parse_xml(xml)
        buyer = text_of(root, "cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID")
        entry.update(document_id=text_of(root, "cbc:ID"), buyer_document=buyer,
                     supplier_ruc=text_of(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID"))
        rule = self.take_rule(buyer)
        if rule and rule["outcome"] == "unavailable":
            code = rule["code"] or "0130"
            if code in ("502", "503", "504"):
                entry.update(outcome="unavailable", code=code)
                return int(code), ""
            entry["outcome"] = "unavailable"
            raise Fault(code, rule["description"], server=True)
        if rule and rule["outcome"] == "fault":
            raise Fault(rule["code"] or "0306", rule["description"])

        try:
            valid, reason = verify_signature(root, xml)
        except Unsigned:
            entry["signature_valid"] = False
            raise Fault("1059")
        entry.update(signature_valid=valid, signature_detail=reason)
        reference = f"{series}-{number}"
        kind = UBL_ROOTS[doc_type][2]
        notes: list[str] = []
        try:
            if not valid:
                raise Rejection("2335")
            check_structure(root, doc_type, ruc, series, number)
            if rule and rule["outcome"] == "reject":
                code = rule["code"] or "2017"
                if rule["as"] == "fault":
                    raise Fault(code, rule["description"])
                raise Rejection(code, rule["description"])
            code, description = "0", f"La {kind} numero {reference}, ha sido aceptada"
            if rule and rule["outcome"] == "observe":
                note_code = rule["code"] or "4287"
                notes = [f"{note_code} - {rule['description'] or CODES.get(note_code, 'Observación')}"]
        except Rejection as rejection:
            code, description = rejection.code, rejection.text
        entry.update(outcome="observed" if notes else "accepted" if code == "0" else "rejected", code=code)
        cdr_name, cdr = cdr_zip(self.signer, stem, reference, ruc, buyer, code, description, notes)
        entry["cdr_file"] = cdr_name
        return 200, soap_envelope(
            f'<br:sendBillResponse xmlns:br="{SERVICE}"><applicationResponse>'
            f"{base64.b64encode(cdr).decode()}</applicationResponse></br:sendBillResponse>"
        )

    def send_summary(self, call: ET.Element, entry: dict) -> tuple[int, str]:
        file_name = (call.findtext("fileName") or "").strip()
        entry["file_name"] = file_name
        match = SUMMARY_NAME.match(file_name)
        if not match:
            raise Fault("0151")
        ruc, kind, day, number = match.groups()
        stem, xml = open_zip(file_name, call.findtext("contentFile") or "")
        root = parse_xml(xml)
        entry["document_id"] = text_of(root, "cbc:ID")
        try:
            valid, reason = verify_signature(root, xml)
        except Unsigned:
            entry["signature_valid"] = False
            raise Fault("1059")
        entry.update(signature_valid=valid, signature_detail=reason)
        ticket = f"{int(now().timestamp() * 1000)}{secrets.randbelow(1000):03d}"
        code = "0" if valid else "2335"
        with self.lock:
            self.tickets[ticket] = {"stem": stem, "ruc": ruc, "reference": f"{kind}-{day}-{number}", "code": code}
        entry.update(outcome="accepted" if valid else "rejected", code=code, ticket=ticket)
        return 200, soap_envelope(
            f'<br:sendSummaryResponse xmlns:br="{SERVICE}"><ticket>{ticket}</ticket></br:sendSummaryResponse>'
        )

    def get_status(self, call: ET.Element, entry: dict) -> tuple[int, str]:
        ticket = (call.findtext("ticket") or "").strip()
        entry["ticket"] = ticket
        with self.lock:
            summary = self.tickets.get(ticket)
        if summary is None:
            raise Fault("0127")
        code = summary["code"]
        description = (f"El Resumen {summary['reference']}, ha sido aceptado" if code == "0"
                       else CODES.get(code, "Rechazado"))
        _, cdr = cdr_zip(self.signer, summary["stem"], summary["reference"], summary["ruc"], None,
                         code, description, [])
        entry.update(outcome="accepted" if code == "0" else "rejected", code=code)
        status = "0" if code == "0" else "99"
        return 200, soap_envelope(
            f'<br:getStatusResponse xmlns:br="{SERVICE}"><status><content>{base64.b64encode(cdr).decode()}'
            f"</content><statusCode>{status}</statusCode></status></br:getStatusResponse>"
        )

    def handle_soap(self, body: bytes) -> tuple[int, str]:
        entry: dict = {"operation": None, "file_name": None, "signature_valid": None}
        try:
            try:
                envelope = ET.fromstring(body)
            except ET.ParseError:
                raise Fault("0306", "No se puede leer el mensaje SOAP")
            call = envelope.find(f"{{{SOAP_ENV}}}Body/*")
            if envelope.tag != f"{{{SOAP_ENV}}}Envelope" or call is None:
                raise Fault("0306", "No es un mensaje SOAP 1.1")
            operation = call.tag.rsplit("}", 1)[-1]
            entry["operation"] = operation
            self.check_credentials(envelope)
            handlers = {"sendBill": self.send_bill, "sendSummary": self.send_summary, "getStatus": self.get_status}
            if operation not in handlers:
                raise Fault("0306", f"Operación desconocida: {operation}")
            status, answer = handlers[operation](call, entry)
        except Fault as fault:
            entry.setdefault("outcome", "fault")  # "unavailable" when a rule said so
            entry["code"] = fault.code
            status, answer = 500, fault_envelope(fault)
        entry["http_status"] = status
        self.record(entry)
        log(f"{entry.get('operation')} {entry.get('file_name') or entry.get('ticket') or ''} -> "
            f"{status} {entry.get('outcome')} {entry.get('code')}")
        return status, answer


def soap_envelope(body: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env="{SOAP_ENV}">'
            f"<soap-env:Header/><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>")


def fault_envelope(fault: Fault) -> str:
    side = "Server" if fault.server else "Client"
    return soap_envelope(
        f"<soap-env:Fault><faultcode>soap-env:{side}.{escape(fault.code)}</faultcode>"
        f"<faultstring>{escape(fault.text)}</faultstring></soap-env:Fault>"
    )


def wsdl(url: str) -> str:
    operations = "".join(
        f'<wsdl:operation name="{op}"><soap:operation soapAction="urn:{op}" style="document"/>'
        f'<wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output>'
        f"</wsdl:operation>"
        for op in ("sendBill", "sendSummary", "getStatus")
    )
    port_ops = "".join(
        f'<wsdl:operation name="{op}"><wsdl:input message="tns:{op}Request"/>'
        f'<wsdl:output message="tns:{op}Response"/></wsdl:operation>'
        for op in ("sendBill", "sendSummary", "getStatus")
    )
    messages = "".join(
        f'<wsdl:message name="{op}Request"><wsdl:part name="parameters" element="tns:{op}"/></wsdl:message>'
        f'<wsdl:message name="{op}Response"><wsdl:part name="parameters" element="tns:{op}Response"/></wsdl:message>'
        for op in ("sendBill", "sendSummary", "getStatus")
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="billService" targetNamespace="{SERVICE}" xmlns:tns="{SERVICE}"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/">
{messages}
<wsdl:portType name="billService">{port_ops}</wsdl:portType>
<wsdl:binding name="BillServicePortBinding" type="tns:billService">
<soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>{operations}</wsdl:binding>
<wsdl:service name="billService"><wsdl:port name="BillServicePort" binding="tns:BillServicePortBinding">
<soap:address location="{escape(url)}"/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""


# ---- HTTP


def log(message: str) -> None:
    print(f"{now():%H:%M:%S} {message}", flush=True)


def make_handler(service: Service):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass  # one line per call comes from Service.handle_soap

        def reply(self, status: int, body: str | bytes, content_type: str) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            if data:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def json(self, status: int, value) -> None:
            self.reply(status, json.dumps(value, ensure_ascii=False, indent=1) + "\n", "application/json")

        def body(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.json(413, {"error": "body too large"})
                return None
            return self.rfile.read(length)

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/billService" and url.query.lower() == "wsdl":
                host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
                self.reply(200, wsdl(f"http://{host}/billService"), "text/xml; charset=utf-8")
            elif url.path == "/_control/health":
                self.json(200, {"ok": True})
            elif url.path == "/_control/received":
                with service.lock:
                    self.json(200, list(service.received))
            elif url.path == "/_control/rules":
                with service.lock:
                    self.json(200, list(service.rules))
            else:
                self.json(404, {"error": "not found"})

        def do_DELETE(self):
            path = urlsplit(self.path).path
            with service.lock:
                if path == "/_control/rules":
                    service.rules.clear()
                elif path == "/_control/received":
                    service.received.clear()
                else:
                    return self.json(404, {"error": "not found"})
            self.json(200, {"ok": True})

        def do_POST(self):
            path = urlsplit(self.path).path
            body = self.body()
            if body is None:
                return
            if path == "/_control/rules":
                try:
                    rule = json.loads(body or b"null")
                    if not isinstance(rule, dict):
                        raise ValueError("a JSON object is expected")
                    self.json(201, service.add_rule(rule))
                except ValueError as e:  # json.JSONDecodeError is a ValueError
                    self.json(400, {"error": str(e)})
            elif path == "/billService":
                status, answer = service.handle_soap(body)
                self.reply(status, answer, "text/xml; charset=utf-8")
            else:
                self.json(404, {"error": "not found"})

    return Handler


def load_credentials(path: str, seed: str | None) -> dict:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    ruc = "20100070970"
    if seed and os.path.exists(seed):
        with open(seed, encoding="utf-8") as f:
            found = re.search(r'"ruc"\s*:\s*"(\d{11})"', f.read())
        ruc = found.group(1) if found else ruc
    credentials = {"username": f"{ruc}MODDATOS", "password": secrets.token_hex(12)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(credentials, f)
    return credentials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True, help="where the stand-in's key and certificate live")
    parser.add_argument("--credentials", required=True, help="JSON file with the expected username and password")
    parser.add_argument("--seed", help="seed.json, whose first RUC names a new credentials file's user")
    args = parser.parse_args()
    for tool in ("xmlsec1", "openssl"):
        if shutil.which(tool) is None:
            sys.exit(f"standin: {tool} is not installed (infra/local/up installs it: ensure_debian_packages)")
    os.makedirs(args.state_dir, exist_ok=True)
    service = Service(load_credentials(args.credentials, args.seed), Signer(args.state_dir))
    server = ThreadingHTTPServer((args.host, args.port), make_handler(service))
    server.daemon_threads = True
    log(f"SUNAT stand-in on http://{args.host}:{args.port}/billService (user {service.credentials['username']})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
