"""Verification of a detached CMS/PKCS#7 signature (RFC 5652) over a document.

``cryptography`` loads the signer's certificates but has no public API to verify a
detached SignedData, so the few DER structures needed are walked here and the signature
is checked with ``cryptography``'s primitives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

_MESSAGE_DIGEST = bytes.fromhex("2a864886f70d010904")  # 1.2.840.113549.1.9.4
_DIGESTS = {
    bytes.fromhex("608648016503040201"): ("sha256", hashes.SHA256()),
    bytes.fromhex("608648016503040202"): ("sha384", hashes.SHA384()),
    bytes.fromhex("608648016503040203"): ("sha512", hashes.SHA512()),
}


@dataclass
class _Tlv:
    tag: int
    start: int  # first content byte
    end: int  # one past the last content byte
    data: bytes

    @property
    def content(self) -> bytes:
        return self.data[self.start : self.end]

    @property
    def raw(self) -> bytes:
        return self.data[self._header_start : self.end]

    _header_start: int = 0


def _read(data: bytes, pos: int) -> _Tlv:
    tag = data[pos]
    length = data[pos + 1]
    start = pos + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start : start + n], "big")
        start += n
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    tlv = _Tlv(tag, start, end, data)
    tlv._header_start = pos
    return tlv


def _children(parent: _Tlv) -> list[_Tlv]:
    out, pos = [], parent.start
    while pos < parent.end:
        child = _read(parent.data, pos)
        out.append(child)
        pos = child.end
    return out


def verify_detached(content: bytes, signature_der: bytes) -> tuple[bool, str]:
    """Whether ``signature_der`` (a DER ContentInfo with SignedData) signs ``content``.

    The signer's certificate is the one carried in the container; its chain of trust
    is not checked here.
    """
    try:
        return _verify(content, signature_der)
    except (ValueError, IndexError, TypeError) as exc:
        return False, f"La firma no es un SignedData CMS legible ({exc})."


def _verify(content: bytes, signature_der: bytes) -> tuple[bool, str]:
    try:
        info = _read(signature_der, 0)
        explicit = _children(info)[1]  # [0] EXPLICIT SignedData
        signed_data = _children(explicit)[0]
        parts = _children(signed_data)
        certs = [
            x509.load_der_x509_certificate(c.raw)
            for p in parts
            if p.tag == 0xA0
            for c in _children(p)
        ]
        signer_infos = _children(parts[-1])
    except (ValueError, IndexError) as exc:
        return False, f"La firma no es un SignedData CMS legible ({exc})."
    if not certs:
        return False, "La firma no trae el certificado del firmante."
    for signer in signer_infos:
        try:
            fields = _children(signer)
            digest_oid = _children(fields[2])[0].content
            name, algorithm = _DIGESTS[digest_oid]
            attrs = next(f for f in fields if f.tag == 0xA0)
            signature = next(f for f in fields[4:] if f.tag == 0x04).content
        except (ValueError, IndexError, KeyError, StopIteration):
            continue
        digest = None
        for attr in _children(attrs):
            oid, values = _children(attr)
            if oid.content == _MESSAGE_DIGEST:
                digest = _children(values)[0].content
        if digest != hashlib.new(name, content).digest():
            return False, "La firma no corresponde a este documento (resumen distinto)."
        # The signature covers the DER of the attributes as a SET (tag 0x31).
        signed_bytes = b"\x31" + attrs.raw[1:]
        for cert in certs:
            key = cert.public_key()
            try:
                if isinstance(key, rsa.RSAPublicKey):
                    key.verify(signature, signed_bytes, padding.PKCS1v15(), algorithm)
                elif isinstance(key, ec.EllipticCurvePublicKey):
                    key.verify(signature, signed_bytes, ec.ECDSA(algorithm))
                else:
                    continue
            except InvalidSignature:
                continue
            subject = cert.subject.rfc4514_string()[:300]
            return True, f"Firma válida de {subject}."
    return False, "Ninguna firma del contenedor pudo verificarse con sus certificados."
