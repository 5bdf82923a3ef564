#!/usr/bin/env python3
"""A straightforward Python implementation of Passerelle's DMP path, for comparison (issue 17).

Written from scratch as a plain script would be, doing the same work per document as the
gateway on the DMP-only workload:

  inbox (PDF + JSON sidecar, docs/sidecar.md)
  → CDA: Templates/cda/n1-pdf.xml rendered with the same placeholders (a small Mustache subset:
    {{name}} XML-escaped, {{#name}}…{{/name}} kept when the value is set, {{! comments}})
  → XSD validation of the CDA with lxml against the shared kit's CDA_extended.xsd
  → XDS metadata (submission set, document entry, the signature document entry, associations)
  → submission-set signature, XAdES style: an enveloping ds:Signature (signxml) whose object
    holds a ds:Manifest with the digests of the submission set and of the CDA, and XAdES
    QualifyingProperties (signing time, certificate digest, commitment type)
  → VIHF: a SAML 2.0 assertion with the VIHF attributes, enveloped signature (signxml)
  → SOAP 1.2 envelope (WS-Addressing, WS-Security with the VIHF), MTOM multipart/related with
    the CDA and the signature document as binary parts
  → POST over a keep-alive requests.Session with mutual TLS (org-auth.p12 → PEM in a temp dir)
  → RegistryResponse parsed with lxml, Success required
  → journal: SQLite (WAL, synchronous=FULL), one transaction per document
  → the input files moved to done/.

Two worker processes (multiprocessing), each with its own session, journal connection, schema
and keys. Prints one JSON line with documents/s and the CPU seconds of the workers (+ parent).

It need not pass the strict endpoint (no official conformance checks were made on its
output); it is meant to be fed to the minimal acknowledging endpoint (nginx) of
`passerelle-bench e2e --endpoint minimal`.

  .venv/bin/python scripts/bench/reference_dmp.py --inbox DIR --work DIR --url https://localhost:PORT/dmp/repository
"""
import argparse
import base64
import datetime
import hashlib
import json
import multiprocessing
import os
import re
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from xml.sax.saxutils import escape

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from signxml import XMLSigner, methods

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KINDS = {
    "ldl": ("11490-0", "Lettre de liaison de sortie", "10", "Compte rendu"),
    "ordonnance": ("57833-6", "Prescription de médicaments", "20", "Prescription"),
    "prescription": ("57833-6", "Prescription de médicaments", "20", "Prescription"),
    "cro": ("34874-8", "CR opératoire", "10", "Compte rendu"),
    "cr-bio": ("11502-2", "CR d'examens biologiques", "10", "Compte rendu"),
    "cr-imagerie": ("18748-4", "CR d'imagerie médicale", "10", "Compte rendu"),
}
NS = {
    "soap": "http://www.w3.org/2003/05/soap-envelope",
    "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
}


# --- CDA template (Mustache subset) ------------------------------------------------------------

SECTION = re.compile(r"\{\{#([\w.]+)\}\}(.*?)\{\{/\1\}\}", re.S)
VARIABLE = re.compile(r"\{\{([\w.]+)\}\}")
COMMENT = re.compile(r"\{\{!.*?\}\}\n?", re.S)


def render(template, values):
    text = COMMENT.sub("", template)
    while True:  # sections may hold sections: innermost-last is fine, names differ
        new = SECTION.sub(lambda m: m.group(2) if values.get(m.group(1)) else "", text)
        if new == text:
            break
        text = new
    return VARIABLE.sub(lambda m: escape(str(values.get(m.group(1), "")), {'"': "&quot;"}), text)


def hl7_time(iso):
    """2026-11-20T14:30:00+01:00 → 20261120143000+0100."""
    d = datetime.datetime.fromisoformat(iso)
    return d.strftime("%Y%m%d%H%M%S") + d.strftime("%z")


def cda_values(m, pdf_b64):
    kind = KINDS[m["kind"]]
    p = m["patient"]
    t = p["traits"]
    a = m["author"]
    s = m.get("structure") or {"finess": "750803447", "name": "Hôpital de démonstration"}
    stay = m.get("stay") or {}
    event = m.get("service_event") or {}
    addr = p.get("address") or {}
    telecom = p.get("telecom") or []
    v = {
        "id.root": m["id"]["root"], "id.extension": m["id"].get("extension"),
        "setId.root": m.get("set_id", m["id"])["root"], "setId.extension": m.get("set_id", m["id"]).get("extension"),
        "versionNumber": m.get("version_number", 1),
        "kind.code": kind[0], "kind.displayName": kind[1], "title": m.get("title") or kind[1],
        "effectiveTime": hl7_time(m["effective_time"]),
        "confidentiality.code": m.get("confidentiality", "N"), "confidentiality.displayName": "Normal",
        "ins.root": p["ins"]["oid"], "ins.extension": p["ins"]["value"].replace(" ", ""),
        "ipp.root": p["ipp"]["authority"], "ipp.extension": p["ipp"]["value"],
        "addr": bool(addr), "addr.street": " ".join(addr.get("lines", [])), "addr.postalCode": addr.get("postal_code"),
        "addr.city": addr.get("city"), "addr.country": addr.get("country"),
        "patient.birthName": t["birth_name"], "patient.birthGivenNames": t.get("birth_given_names"),
        "patient.firstBirthGivenName": t["first_birth_given_name"], "patient.usedName": t.get("used_name"),
        "patient.usedGivenName": t.get("used_given_name"),
        "patient.gender.code": t["sex"], "patient.gender.displayName": {"F": "Féminin", "M": "Masculin"}.get(t["sex"], "Inconnu"),
        "patient.birthTime": t["birth_date"].replace("-", ""), "patient.birthPlace": t.get("birth_place"),
        "structure.id": "1" + s["finess"], "structure.name": s["name"],
        "stay.id.root": (stay.get("id") or {}).get("authority"), "stay.id.extension": (stay.get("id") or {}).get("value"),
        "stay.start": hl7_time(stay["admission"]) if stay.get("admission") else hl7_time(m["effective_time"]),
        "stay.end": hl7_time(stay["discharge"]) if stay.get("discharge") else None,
        "facility.code": (stay.get("facility_type") or {}).get("code", "SA01"),
        "facility.displayName": (stay.get("facility_type") or {}).get("display_name", "Etablissement public de santé"),
        "facility.codeSystem": (stay.get("facility_type") or {}).get("code_system", "1.2.250.1.71.4.2.4"),
        "practiceSetting.code": (stay.get("practice_setting") or {}).get("code"),
        "practiceSetting.displayName": (stay.get("practice_setting") or {}).get("display_name"),
        "practiceSetting.codeSystem": (stay.get("practice_setting") or {}).get("code_system"),
        "event.start": hl7_time(event.get("start", m["effective_time"])),
        "event.end": hl7_time(event["end"]) if event.get("end") else None,
        "event.code": (event.get("code") or {}).get("code"), "event.displayName": (event.get("code") or {}).get("display_name"),
        "event.codeSystem": (event.get("code") or {}).get("code_system"),
        "pdf.base64": pdf_b64,
    }
    for i, value in enumerate(telecom[:3]):
        v[f"telecom{i + 1}"] = value
    for role in ("author", "legal", "performer"):
        v[f"{role}.id"] = "8" + a["rpps"]
        v[f"{role}.family"] = a["family_name"]
        v[f"{role}.given"] = a.get("given_name")
        v[f"{role}.prefix"] = a.get("prefix")
        v[f"{role}.suffix"] = a.get("suffix")
        v[f"{role}.specialty.code"] = a["specialty"]["code"]
        v[f"{role}.specialty.displayName"] = a["specialty"]["display_name"]
        v[f"{role}.specialty.codeSystem"] = a["specialty"]["code_system"]
    return v


# --- XDS metadata ------------------------------------------------------------------------------

def slot(name, *values):
    return f'<rim:Slot name="{name}"><rim:ValueList>' + "".join(f"<rim:Value>{escape(v)}</rim:Value>" for v in values) + "</rim:ValueList></rim:Slot>"


def classification(scheme, obj, code, system, display, cid):
    return (f'<rim:Classification classificationScheme="{scheme}" classifiedObject="{obj}" id="{cid}" nodeRepresentation="{escape(code)}">'
            + slot("codingScheme", system) + f'<rim:Name><rim:LocalizedString value="{escape(display)}"/></rim:Name></rim:Classification>')


def external_id(scheme, obj, value, name, eid):
    return (f'<rim:ExternalIdentifier id="{eid}" identificationScheme="{scheme}" registryObject="{obj}" value="{escape(value)}">'
            f'<rim:Name><rim:LocalizedString value="{name}"/></rim:Name></rim:ExternalIdentifier>')


def document_entry(entry, unique_id, patient_id, m, kind, mime, size, digest, author, stay, now, format_code):
    x = (f'<rim:ExtrinsicObject id="{entry}" mimeType="{mime}" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
         + slot("creationTime", now) + slot("hash", digest) + slot("languageCode", "fr-FR")
         + slot("legalAuthenticator", author) + slot("serviceStartTime", hl7_time(m["effective_time"])[:14])
         + slot("size", str(size)) + slot("sourcePatientId", patient_id)
         + slot("sourcePatientInfo", f"PID-5|{m['patient']['traits']['birth_name']}^{m['patient']['traits']['first_birth_given_name']}^^^^^L",
                f"PID-7|{m['patient']['traits']['birth_date'].replace('-', '')}", f"PID-8|{m['patient']['traits']['sex']}")
         + f'<rim:Name><rim:LocalizedString value="{escape(kind[1])}"/></rim:Name>'
         + f'<rim:Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="{entry}" id="{entry}-author" nodeRepresentation="">'
         + slot("authorPerson", author) + slot("authorInstitution", "Hôpital de démonstration^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1750803447")
         + slot("authorSpecialty", "G15_10/SM26^Médecin - Qualifié en médecine générale (SM)^1.2.250.1.213.1.1.4.5") + "</rim:Classification>"
         + classification("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", entry, kind[2], "1.2.250.1.213.1.1.4.1", kind[3], f"{entry}-class")
         + classification("urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", entry, m.get("confidentiality", "N"), "2.16.840.1.113883.5.25", "Normal", f"{entry}-conf")
         + classification("urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", entry, format_code, "1.2.250.1.213.1.1.4.2.282", "Document à corps non structuré en Pdf/A-1", f"{entry}-format")
         + classification("urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1", entry, stay.get("facility_type", {}).get("code", "SA01"),
                          "1.2.250.1.71.4.2.4", "Etablissement public de santé", f"{entry}-facility")
         + classification("urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead", entry, "ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de santé", f"{entry}-practice")
         + classification("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", entry, kind[0], "2.16.840.1.113883.6.1", kind[1], f"{entry}-type")
         + external_id("urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", entry, patient_id, "XDSDocumentEntry.patientId", f"{entry}-pid")
         + external_id("urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", entry, unique_id, "XDSDocumentEntry.uniqueId", f"{entry}-uid")
         + "</rim:ExtrinsicObject>")
    return x


# --- Signatures --------------------------------------------------------------------------------

class Keys:
    def __init__(self, pki, passphrase):
        with open(os.path.join(pki, "org-sign.p12"), "rb") as f:
            key, cert, chain = pkcs12.load_key_and_certificates(f.read(), passphrase)
        # The key object, not PEM: signxml would parse (and check) a PEM key again on every signature.
        self.key = key
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_digest = base64.b64encode(hashlib.sha256(self.cert_der).digest()).decode()
        self.issuer = cert.issuer.rfc4514_string()
        self.serial = str(cert.serial_number)
        self.signer = XMLSigner(method=methods.enveloped, signature_algorithm="rsa-sha256", digest_algorithm="sha256",
                                c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
        self.enveloping = XMLSigner(method=methods.enveloping, signature_algorithm="rsa-sha256", digest_algorithm="sha256",
                                    c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")


def vihf(keys, m, now, until):
    ins = m["patient"]["ins"]
    a = m["author"]

    def attr(name, value):
        return f'<saml2:Attribute Name="{name}"><saml2:AttributeValue>{escape(value)}</saml2:AttributeValue></saml2:Attribute>'
    aid = "VIHF-" + str(uuid.uuid4())
    xml = (f'<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           f'ID="{aid}" IssueInstant="{now}" Version="2.0"><saml2:Issuer>1750803447</saml2:Issuer>'
           f'<saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">8{a["rpps"]}</saml2:NameID></saml2:Subject>'
           f'<saml2:Conditions NotBefore="{now}" NotOnOrAfter="{until}"/>'
           f'<saml2:AuthnStatement AuthnInstant="{now}"><saml2:AuthnContext><saml2:AuthnContextClassRef>'
           f'urn:oasis:names:tc:SAML:2.0:ac:classes:X509</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>'
           '<saml2:AttributeStatement>'
           + attr("VIHF_Version", "3.0") + attr("Identifiant_Structure", "1750803447") + attr("Secteur_Activite", "SA01^1.2.250.1.71.4.2.4")
           + attr("urn:oasis:names:tc:xspa:1.0:subject:subject-id", f'{a.get("given_name", "")} {a["family_name"]}')
           + '<saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role"><saml2:AttributeValue><Role xmlns="urn:hl7-org:v3" '
             'code="10" codeSystem="1.2.250.1.71.1.2.7" displayName="Médecin" xsi:type="CE"/></saml2:AttributeValue></saml2:Attribute>'
           + '<saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"><saml2:AttributeValue><PurposeOfUse xmlns="urn:hl7-org:v3" '
             'code="normal" codeSystem="1.2.250.1.213.1.1.4.248" displayName="Accès normal" xsi:type="CE"/></saml2:AttributeValue></saml2:Attribute>'
           + attr("urn:oasis:names:tc:xacml:2.0:resource:resource-id", f'{ins["value"]}^^^&{ins["oid"]}&ISO^NH')
           + attr("Ressource_URN", "urn:dmp") + attr("Mode_Acces", "normal") + attr("Authentification_Mode", "INDIRECTE_RENFORCEE")
           + attr("LPS_Nom", "Reference") + attr("LPS_Version", "1.0") + attr("LPS_ID_HOMOLOGATION_DMP", "HOMOLOGATION-TEST-1")
           + '</saml2:AttributeStatement></saml2:Assertion>')
    root = etree.fromstring(xml.encode())
    signed = keys.signer.sign(root, key=keys.key, cert=keys.cert_pem, reference_uri=aid, id_attribute="ID")
    # The signature goes after the Issuer, as SAML wants it.
    signature = signed.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    signed.remove(signature)
    signed.insert(1, signature)
    return etree.tostring(signed)


def submission_signature(keys, set_uid, set_digest, doc_uid, doc_digest, now):
    obj = (f'<Objects xmlns="urn:passerelle:reference" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xades="http://uri.etsi.org/01903/v1.3.2#">'
           f'<ds:Manifest Id="IHEManifest">'
           f'<ds:Reference URI="urn:oid:{set_uid}"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{set_digest}</ds:DigestValue></ds:Reference>'
           f'<ds:Reference URI="urn:oid:{doc_uid}"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{doc_digest}</ds:DigestValue></ds:Reference>'
           f'</ds:Manifest><xades:QualifyingProperties><xades:SignedProperties Id="signed-properties"><xades:SignedSignatureProperties>'
           f'<xades:SigningTime>{now}</xades:SigningTime><xades:SigningCertificateV2><xades:Cert><xades:CertDigest>'
           f'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{keys.cert_digest}</ds:DigestValue>'
           f'</xades:CertDigest></xades:Cert></xades:SigningCertificateV2><xades:SignaturePolicyIdentifier><xades:SignaturePolicyImplied/>'
           f'</xades:SignaturePolicyIdentifier></xades:SignedSignatureProperties><xades:SignedDataObjectProperties><xades:CommitmentTypeIndication>'
           f'<xades:CommitmentTypeId><xades:Identifier>urn:oid:1.2.840.10065.1.12.1.14</xades:Identifier></xades:CommitmentTypeId>'
           f'<xades:AllSignedDataObjects/></xades:CommitmentTypeIndication></xades:SignedDataObjectProperties></xades:SignedProperties>'
           f'</xades:QualifyingProperties></Objects>')
    signed = keys.enveloping.sign(etree.fromstring(obj.encode()), key=keys.key, cert=keys.cert_pem)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


# --- One document ------------------------------------------------------------------------------

class Worker:
    def __init__(self, a, tls_files):
        self.a = a
        self.template = open(a.template, encoding="utf-8").read()
        self.schema = etree.XMLSchema(etree.parse(a.xsd))
        passphrase = open(os.path.join(a.pki, "passphrase.txt"), "rb").read().strip()
        self.keys = Keys(a.pki, passphrase)
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the test CA
        self.session.cert = tls_files
        self.session.verify = os.path.join(a.pki, "ca.pem")
        self.db = sqlite3.connect(os.path.join(a.work, "journal.sqlite"), timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)

    def process(self, name):
        a = self.a
        sidecar_path = os.path.join(a.inbox, name + ".json")
        pdf_path = os.path.join(a.inbox, name + ".pdf")
        with open(sidecar_path, "rb") as f:
            sidecar = f.read()
        with open(pdf_path, "rb") as f:
            pdf = f.read()
        input_hash = hashlib.sha256(sidecar + pdf).hexdigest()
        m = json.loads(sidecar)
        if m["patient"].get("identity_status") != "QUAL" or m.get("destinations") != ["dmp"]:
            raise ValueError(f"{name}: not a qualified-INS, DMP-only document")
        kind = KINDS[m["kind"]]

        # CDA, then the XSD.
        cda = render(self.template, cda_values(m, base64.b64encode(pdf).decode())).encode("utf-8")
        document = etree.fromstring(cda, self.parser)
        if not self.schema.validate(document):
            raise ValueError(f"{name}: CDA not valid: {self.schema.error_log.last_error}")

        # XDS metadata.
        utc = datetime.datetime.now(datetime.timezone.utc)
        now, until = utc.strftime("%Y-%m-%dT%H:%M:%SZ"), (utc + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        xds_now = utc.strftime("%Y%m%d%H%M%S")
        doc_uid = m["id"]["root"] + ("^" + m["id"]["extension"] if m["id"].get("extension") else "")
        set_uid = f"1.2.250.1.999.1.8.{uuid.uuid4().int >> 64}"
        sig_uid = f"1.2.250.1.999.1.7.{uuid.uuid4().int >> 64}"
        ins = m["patient"]["ins"]
        patient_id = f'{ins["value"]}^^^&{ins["oid"]}&ISO^NH'
        author = f'8{m["author"]["rpps"]}^{m["author"]["family_name"]}^{m["author"].get("given_name", "")}^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS'
        cda_sha1 = hashlib.sha1(cda).hexdigest()
        cda_b64_sha256 = base64.b64encode(hashlib.sha256(cda).digest()).decode()
        set_xml = (f'<rim:RegistryPackage id="SubmissionSet01">' + slot("submissionTime", xds_now)
                   + external_id("urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", "SubmissionSet01", set_uid, "XDSSubmissionSet.uniqueId", "ss-uid")
                   + external_id("urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", "SubmissionSet01", patient_id, "XDSSubmissionSet.patientId", "ss-pid")
                   + external_id("urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", "SubmissionSet01", "1.2.250.1.999.1", "XDSSubmissionSet.sourceId", "ss-src")
                   + classification("urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", "SubmissionSet01", kind[0], "2.16.840.1.113883.6.1", kind[1], "ss-ct")
                   + "</rim:RegistryPackage>")
        set_digest = base64.b64encode(hashlib.sha256(set_xml.encode()).digest()).decode()
        signature = submission_signature(self.keys, set_uid, set_digest, doc_uid, cda_b64_sha256, now)
        sig_sha1 = hashlib.sha1(signature).hexdigest()
        entries = (document_entry("Document01", doc_uid, patient_id, m, kind, "text/xml", len(cda), cda_sha1, author, m.get("stay") or {}, xds_now,
                                  "urn:ihe:iti:xds-sd:pdf:2008")
                   + document_entry("Signature01", sig_uid, patient_id, m, ("E1762", "Signature", "SIGNATURE", "Document de signature"),
                                    "text/xml", len(signature), sig_sha1, author, m.get("stay") or {}, xds_now, "http://www.w3.org/2000/09/xmldsig#"))
        associations = "".join(
            f'<rim:Association associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" id="as-{target}" '
            f'sourceObject="SubmissionSet01" targetObject="{target}">' + slot("SubmissionSetStatus", "Original") + "</rim:Association>"
            for target in ("Document01", "Signature01"))
        assertion = vihf(self.keys, m, now, until)
        message_id = f"urn:uuid:{uuid.uuid4()}"
        envelope = (
            '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">'
            '<soap:Header><wsa:Action soap:mustUnderstand="true">urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b</wsa:Action>'
            f'<wsa:MessageID soap:mustUnderstand="true">{message_id}</wsa:MessageID>'
            '<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>'
            f'<wsa:To soap:mustUnderstand="true">{escape(a.url)}</wsa:To>'
            '<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" soap:mustUnderstand="true">'
            + assertion.decode() + '</wsse:Security></soap:Header><soap:Body>'
            '<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007" xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
            'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" xmlns:xop="http://www.w3.org/2004/08/xop/include">'
            '<lcm:SubmitObjectsRequest><rim:RegistryObjectList>' + set_xml + entries + associations
            + '</rim:RegistryObjectList></lcm:SubmitObjectsRequest>'
            '<xdsb:Document id="Document01"><xop:Include href="cid:doc1@passerelle.reference"/></xdsb:Document>'
            '<xdsb:Document id="Signature01"><xop:Include href="cid:sig1@passerelle.reference"/></xdsb:Document>'
            '</xdsb:ProvideAndRegisterDocumentSetRequest></soap:Body></soap:Envelope>').encode("utf-8")
        # Well-formed before it leaves (a plain script would build it with lxml; this checks the same).
        etree.fromstring(envelope, self.parser)

        # MTOM.
        boundary = "MIMEBoundary_" + uuid.uuid4().hex
        action = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"

        def part(content_type, cid, body):
            return (f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n").encode() + body + b"\r\n"
        body = (part(f'application/xop+xml; charset=UTF-8; type="application/soap+xml"; action="{action}"', "root@passerelle.reference", envelope)
                + part("text/xml", "doc1@passerelle.reference", cda) + part("text/xml", "sig1@passerelle.reference", signature)
                + f"--{boundary}--\r\n".encode())
        content_type = (f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start="<root@passerelle.reference>"; '
                        f'start-info="application/soap+xml"; action="{action}"')
        response = self.session.post(a.url, data=body, headers={"Content-Type": content_type}, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"{name}: HTTP {response.status_code}")
        answer = etree.fromstring(response.content, self.parser)
        status = answer.find(".//rs:RegistryResponse", NS)
        if status is None or not status.get("status", "").endswith(":Success"):
            raise RuntimeError(f"{name}: not a Success RegistryResponse")

        # Journal, one transaction, then done/.
        masked_ins = ins["value"][:1] + "*" * 10 + ins["value"][-4:]
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO documents (name, document_id, input_sha256, cda_sha1, masked_ins, state, message_id, sent_at) "
                        "VALUES (?, ?, ?, ?, ?, 'sent', ?, ?)", (name, doc_uid, input_hash, cda_sha1, masked_ins, message_id, now))
        self.db.execute("COMMIT")
        for path in (pdf_path, sidecar_path):
            os.rename(path, os.path.join(a.work, "done", os.path.basename(path)))


def work(args):
    a, tls_files, names = args
    w = Worker(a, tls_files)
    for name in names:
        w.process(name)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return len(names), usage.ru_utime + usage.ru_stime


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inbox", required=True)
    p.add_argument("--work", required=True, help="journal.sqlite and done/ go here")
    p.add_argument("--url", required=True)
    p.add_argument("--pki", default=os.path.join(ROOT, "Certificates", "test-pki"))
    p.add_argument("--template", default=os.path.join(ROOT, "Templates", "cda", "n1-pdf.xml"))
    p.add_argument("--xsd", default=os.path.join(ROOT, "..", "shared", "conformance", "cda", "xsd", "cda", "CDA_extended.xsd"))
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    os.makedirs(os.path.join(a.work, "done"), exist_ok=True)
    start_cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()

    # Mutual TLS: requests wants PEM files; the key stays in a 0700 temp folder for the run.
    with tempfile.TemporaryDirectory(prefix="reference-dmp-") as tmp:
        passphrase = open(os.path.join(a.pki, "passphrase.txt"), "rb").read().strip()
        with open(os.path.join(a.pki, "org-auth.p12"), "rb") as f:
            key, cert, chain = pkcs12.load_key_and_certificates(f.read(), passphrase)
        cert_file, key_file = os.path.join(tmp, "auth.pem"), os.path.join(tmp, "auth.key")
        with open(cert_file, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain or []))
        with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        db = sqlite3.connect(os.path.join(a.work, "journal.sqlite"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS documents (id INTEGER PRIMARY KEY, name TEXT UNIQUE, document_id TEXT, input_sha256 TEXT, "
                   "cda_sha1 TEXT, masked_ins TEXT, state TEXT, message_id TEXT, sent_at TEXT)")
        db.close()
        names = sorted(n[:-5] for n in os.listdir(a.inbox) if n.endswith(".json") and os.path.exists(os.path.join(a.inbox, n[:-5] + ".pdf")))
        shares = [names[i::a.workers] for i in range(a.workers)]
        with multiprocessing.get_context("fork").Pool(a.workers) as pool:
            results = pool.map(work, [(a, (cert_file, key_file), share) for share in shares])
    elapsed = time.monotonic() - start
    end_cpu = resource.getrusage(resource.RUSAGE_SELF)
    parent = (end_cpu.ru_utime + end_cpu.ru_stime) - (start_cpu.ru_utime + start_cpu.ru_stime)
    documents = sum(r[0] for r in results)
    workers_cpu = sum(r[1] for r in results)
    cpu = workers_cpu + parent
    print(json.dumps({"benchmark": "reference-dmp-python", "documents": documents, "workers": a.workers, "elapsed_seconds": round(elapsed, 3),
                      "documents_per_second": round(documents / elapsed, 2), "cpu_seconds": round(cpu, 3),
                      "cpu_ms_per_document": round(cpu * 1000 / max(documents, 1), 2)}))


if __name__ == "__main__":
    sys.exit(main())
