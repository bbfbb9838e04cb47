"""The service account issuer of the boot sandbox's K3s: its signing keys, and the two documents
kube-apiserver serves for them (kubernetes pkg/serviceaccount/openidmetadata.go), built here as
kube-apiserver builds them, so the k3s stub serves what a real API would."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The audience STS requires of a web identity token (amazon-eks-pod-identity-webhook's default).
STS_AUDIENCE = "sts.amazonaws.com"


@functools.cache
def signing_key(n: int = 0) -> rsa.RSAPrivateKey:
    """The sandbox's service account key number n (K3s: server/tls/service.key, RSA 2048)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(key: rsa.RSAPrivateKey) -> str:
    """kube-apiserver's kid: base64url(sha256(PKIX DER of the public key)), unpadded
    (kubernetes pkg/serviceaccount/jwt.go, keyIDFromPublicKey)."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64url(hashlib.sha256(der).digest())


def jwks(keys: list[rsa.RSAPrivateKey]) -> str:
    """The JWKS of these keys' public halves, as json.Marshal writes go-jose's JSONWebKeySet:
    compact, fields in rawJSONWebKey's order (use, kty, kid, alg, n, e), integers unpadded
    big-endian base64url (openidmetadata.go publicJWKSFromKeys, jwkFromPublicKey)."""
    def jwk(key):
        numbers = key.public_key().public_numbers()
        raw = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")
        return {"use": "sig", "kty": "RSA", "kid": key_id(key), "alg": "RS256", "n": _b64url(raw(numbers.n)),
                "e": _b64url(raw(numbers.e))}
    return json.dumps({"keys": [jwk(k) for k in keys]}, separators=(",", ":"))


def token(key: rsa.RSAPrivateKey, issuer: str, namespace: str = "default", name: str = "app",
          audience: str = STS_AUDIENCE, kid: str | None = None) -> str:
    """A projected service account token as kube-apiserver signs it: RS256, header kid as above
    (pkg/serviceaccount/jwt.go), claims iss, sub system:serviceaccount:<ns>:<name>, aud, exp;
    kid: another key's ID in its header (a forgery)."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    now = int(time.time())
    claims = {"iss": issuer, "sub": f"system:serviceaccount:{namespace}:{name}", "aud": [audience],
              "iat": now, "nbf": now, "exp": now + 3600}
    return jwt.encode({"alg": "RS256", "kid": kid or key_id(key)}, claims, RSAKey.import_key(pem))


def verified_claims(text: str, published_jwks: str, issuer: str) -> dict:
    """The token's claims if it verifies against the published JWKS (by its kid) and names this
    issuer and STS's audience, as STS checks a web identity token; raises otherwise."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(json.loads(published_jwks))
    decoded = jwt.decode(text, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": issuer},
                          aud={"essential": True, "value": STS_AUDIENCE}).validate(decoded.claims)
    return decoded.claims
