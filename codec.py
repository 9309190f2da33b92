"""Optional encryption of every payload Temporal stores: AES-256-GCM, keys that rotate.

With `TANDEM_ENCRYPTION_KEYS` set, workflow inputs, activity arguments and results,
signals, updates, queries and failure messages reach the Temporal server encrypted, so
its database (and anyone reading it) holds no customer data. Without it, payloads are
plain JSON, as before. What the server must read stays readable: workflow ids
(`customer-<id>`, derived from the company name), task queues, timers and the search
attributes TandemPhase and TandemQuadrant.

Keys are base64 of 32 random bytes (`tandem encryption-key`), optionally prefixed by
an id: `2026-q1:BASE64`. The first key encrypts; every key decrypts, so rotating is:
put the new key first, keep the old ones until no open lifecycle holds payloads they
encrypted. Each payload names its key id in its metadata.

The format follows Temporal's encryption sample (metadata `encoding: binary/encrypted`
and `encryption-key-id`, data = 12-byte nonce + AES-GCM ciphertext of the serialized
payload), so a codec server written in another SDK's language can read it too.

Temporal's UI shows encrypted payloads as such; `tandem codec-server` runs the codec
server the UI calls to decode them in the browser (Settings > Codec Server, or
TEMPORAL_CODEC_ENDPOINT on the UI container).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
# The Temporal UI's default origin in the compose stack, and the dev server's UI.
DEFAULT_ORIGINS = ("http://localhost:8080", "http://127.0.0.1:8080", "http://localhost:8233")


class EncryptionKeyError(ValueError):
    """A configured key is unusable (not base64, not 32 bytes, a duplicate id)."""


class PayloadDecryptionError(ValueError):
    """A payload cannot be decrypted with the configured keys."""


@dataclasses.dataclass(frozen=True)
class EncryptionKey:
    key_id: str
    cipher: AESGCM = dataclasses.field(repr=False)


def new_key() -> str:
    """A fresh key, in the form TANDEM_ENCRYPTION_KEYS takes."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def key_fingerprint(raw: bytes) -> str:
    """The id of a key given without one: derived from the key, so every process that is
    given the same key agrees on it, and a hash reveals nothing usable of the key."""
    return "k" + hashlib.sha256(b"tandem-payload-key\x00" + raw).hexdigest()[:16]


def parse_key(entry: str, position: int = 1) -> EncryptionKey:
    """`BASE64` or `ID:BASE64` (base64 has no colon, so the last one splits)."""
    key_id, _, material = entry.strip().rpartition(":")
    where = f"TANDEM_ENCRYPTION_KEYS entry {position}" + (f" ({key_id!r})" if key_id else "")
    try:
        raw = base64.b64decode(material.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(f"{where} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise EncryptionKeyError(
            f"{where} is {len(raw)} bytes; AES-256 needs {KEY_BYTES} "
            "(make one with `tandem encryption-key`)"
        )
    return EncryptionKey(key_id.strip() or key_fingerprint(raw), AESGCM(raw))


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key, decrypts with whichever key a payload names."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__()
        parsed = [parse_key(entry, n) for n, entry in enumerate(keys, start=1)]
        if not parsed:
            raise EncryptionKeyError("no encryption key given")
        self._current = parsed[0]
        self._keys: dict[str, EncryptionKey] = {}
        for key in parsed:
            if key.key_id in self._keys:
                raise EncryptionKeyError(f"two encryption keys have the id {key.key_id!r}")
            self._keys[key.key_id] = key

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe far beyond our volumes
        sealed = self._current.cipher.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._current.key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        # Payloads written before encryption was turned on stay readable as they are.
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        key = self._keys.get(key_id)
        if key is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key {key_id!r}, which is not among "
                f"TANDEM_ENCRYPTION_KEYS (configured: {', '.join(self._keys)}); "
                "add that key to read it"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = key.cipher.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload encrypted with key {key_id!r} does not decrypt with the configured "
                "key of that id: the key is not the one it was encrypted with, "
                "or the payload was altered"
            ) from None
        return Payload.FromString(plain)


def encryption_keys_of(source: Settings | Iterable[str] | None) -> list[str]:
    """The keys, from settings (`encryption_keys`) or given directly; blanks dropped."""
    if source is None:
        return []
    if isinstance(source, str):
        raise TypeError("give a list of keys, not one string")
    if isinstance(source, BaseModel):  # Settings
        source = getattr(source, "encryption_keys", None) or []
    return [k.strip() for k in source if k and k.strip()]


def data_converter(source: Settings | Iterable[str] | None = None) -> DataConverter:
    """Tandem's converter: pydantic payloads, encrypted when a key is configured.

    Failure messages and stack traces are encrypted too (they can quote customer data);
    the clients and workers that hold the key read them as usual."""
    keys = encryption_keys_of(source)
    if not keys:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


# -- the codec server for Temporal's UI and CLI --------------------------------------------


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MIN_TOKEN_BYTES = 32


class CodecServerError(ValueError):
    """The codec server cannot start as configured."""


def codec_server_app(
    codec: PayloadCodec,
    token: str,
    origins: Sequence[str] = DEFAULT_ORIGINS,
    hosts: Sequence[str] = (),
) -> Starlette:
    """Temporal's remote codec protocol: POST /encode and /decode (also under
    /{namespace}/...), a JSON `Payloads` in and out, CORS for the UI's origin.

    It hands out plaintext, so every call must carry `Authorization: Bearer <token>`
    (Temporal's CLI: `--codec-auth "Bearer <token>"`), and it answers only to its own
    host names (loopback and `hosts`): a page on another site that points a host name
    of its own at this address (DNS rebinding) is refused."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    expected = f"Bearer {token}".encode()

    async def transform(request: Request) -> Response:
        sent = request.headers.get("authorization", "")
        if not (sent.isascii() and hmac.compare_digest(sent.encode(), expected)):
            return JSONResponse(
                {"message": "a bearer token is required (Authorization: Bearer ...)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            body = Payloads()
            json_format.Parse(await request.body(), body)
        except json_format.ParseError as error:
            return JSONResponse({"message": f"not a Payloads JSON: {error}"}, status_code=400)
        operation = codec.encode if request.url.path.endswith("/encode") else codec.decode
        try:
            result = Payloads(payloads=await operation(body.payloads))
        except PayloadDecryptionError as error:
            return JSONResponse({"message": str(error)}, status_code=400)
        return Response(json_format.MessageToJson(result), media_type="application/json")

    routes = [
        Route(path, transform, methods=["POST"])
        for path in ("/encode", "/decode", "/{namespace}/encode", "/{namespace}/decode")
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_HOSTS, *hosts]),
        # A browser's preflight carries no credentials: CORS answers it before the token
        # is asked for.
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["content-type", "x-namespace", "authorization"],
            allow_credentials=True,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)


def check_token(token: str | None) -> str:
    if not token or len(token.encode()) < MIN_TOKEN_BYTES:
        raise CodecServerError(
            f"set TANDEM_CODEC_TOKEN to a secret of at least {MIN_TOKEN_BYTES} bytes "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))"): the codec server '
            "hands out plaintext to whoever holds it"
        )
    return token


def serve(
    keys: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 8081,
    origins: Sequence[str] = DEFAULT_ORIGINS,
    token: str | None = None,
    hosts: Sequence[str] = (),
) -> None:
    """Run the codec server until Ctrl-C."""
    import uvicorn

    if not keys:
        raise EncryptionKeyError("no TANDEM_ENCRYPTION_KEYS: there is nothing to decode")
    app = codec_server_app(EncryptionCodec(keys), check_token(token), origins, hosts)
    codec_ids = ", ".join(EncryptionCodec(keys).key_ids)
    print(f"Codec server on http://{host}:{port} (keys {codec_ids})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
