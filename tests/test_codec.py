"""Payload encryption (codec.py): the codec itself, a lifecycle on the real time-skipping
server whose history holds only ciphertext, and the codec server Temporal's UI calls."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy import Engine
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

import codec
import lifecycles
from cli import app
from codec import (
    ENCODING,
    EncryptionCodec,
    EncryptionKeyError,
    PayloadDecryptionError,
    codec_server_app,
    data_converter,
)
from models.customer import SignUp, workflow_id_for
from models.tasks import Task, TaskCompletion, TaskKind, example_result
from plans import load_plan
from settings import Settings
from stack import find_binary
from tests.fault_support import DevServer, eventually, free_port
from worker import build_worker

KEY, OLD_KEY, OTHER_KEY = codec.new_key(), codec.new_key(), codec.new_key()
CODEC_TOKEN = "codec-token-" + "x" * 32
AUTH = {"authorization": f"Bearer {CODEC_TOKEN}"}


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


# -- the codec -------------------------------------------------------------------------------


async def test_payloads_round_trip_encrypted_under_a_key_id() -> None:
    box = EncryptionCodec([KEY])
    original = [plain("ada@acme.test"), plain("")]
    sealed = await box.encode(original)
    for payload in sealed:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[codec.KEY_ID].decode() == box.key_ids[0]
        assert b"ada@acme.test" not in payload.SerializeToString()
    assert sealed[0].data != (await box.encode(original))[0].data  # a fresh nonce each time
    assert await box.decode(sealed) == original
    # Payloads from before encryption was turned on are read as they are.
    assert await box.decode(original) == original


async def test_keys_rotate_the_first_encrypts_and_all_decrypt() -> None:
    before = EncryptionCodec([f"2025:{OLD_KEY}"])
    old = await before.encode([plain("old")])
    after = EncryptionCodec([f"2026:{KEY}", f"2025:{OLD_KEY}"])
    assert after.key_ids == ["2026", "2025"]
    assert await after.decode(old) == [plain("old")]
    new = await after.encode([plain("new")])
    assert new[0].metadata[codec.KEY_ID] == b"2026"
    # A key without an id gets one derived from the key: every process agrees on it.
    assert EncryptionCodec([KEY]).key_ids == EncryptionCodec([f" {KEY} "]).key_ids


async def test_a_wrong_key_fails_clearly() -> None:
    sealed = await EncryptionCodec([KEY]).encode([plain("secret")])
    key_id = sealed[0].metadata[codec.KEY_ID].decode()
    with pytest.raises(PayloadDecryptionError, match=f"key {key_id!r}, which is not among"):
        await EncryptionCodec([OTHER_KEY]).decode(sealed)
    # Same id, other key material (a mistyped key): authenticated decryption refuses.
    with pytest.raises(PayloadDecryptionError, match="does not decrypt with the configured key"):
        await EncryptionCodec([f"{key_id}:{OTHER_KEY}"]).decode(sealed)
    tampered = Payload()
    tampered.CopyFrom(sealed[0])
    tampered.data = tampered.data[:-1] + bytes([tampered.data[-1] ^ 1])
    with pytest.raises(PayloadDecryptionError, match="or the payload was altered"):
        await EncryptionCodec([KEY]).decode([tampered])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("not base64!", "entry 1 is not base64"),
        (base64.b64encode(b"short").decode(), "is 5 bytes; AES-256 needs 32"),
        (f"ops:{base64.b64encode(bytes(16)).decode()}", r"entry 1 \('ops'\) is 16 bytes"),
    ],
)
def test_a_bad_key_is_refused_naming_the_entry(entry: str, message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=message):
        EncryptionCodec([entry])


def test_two_keys_with_one_id_are_refused() -> None:
    with pytest.raises(EncryptionKeyError, match="two encryption keys have the id 'a'"):
        EncryptionCodec([f"a:{KEY}", f"a:{OLD_KEY}"])


def test_the_converter_encrypts_only_when_a_key_is_configured() -> None:
    assert data_converter(None) is pydantic_data_converter
    assert data_converter(["", "  "]) is pydantic_data_converter
    assert data_converter(Settings(_env_file=None)) is pydantic_data_converter  # type: ignore[call-arg]
    converter = data_converter([KEY])
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
    with pytest.raises(TypeError):
        data_converter(KEY)  # type: ignore[arg-type]


@pytest.mark.skipif(
    "encryption_keys" not in Settings.model_fields, reason="settings.encryption_keys not wired yet"
)
def test_keys_come_from_tandem_encryption_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("TANDEM_ENCRYPTION_KEYS", f" 2026:{KEY} , 2025:{OLD_KEY} ")
    settings = Settings()
    converter = data_converter(settings)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_codec.key_ids == ["2026", "2025"]
    assert KEY not in repr(settings)  # keys are secrets
    monkeypatch.setenv("TANDEM_ENCRYPTION_KEYS", json.dumps([KEY]))
    assert Settings().encryption_keys == [KEY]
    monkeypatch.setenv("TANDEM_ENCRYPTION_KEYS", "")
    assert data_converter(Settings()) is pydantic_data_converter


def test_new_key_prints_a_usable_key() -> None:
    made = CliRunner().invoke(app, ["encryption-key"])
    assert made.exit_code == 0, made.output
    EncryptionCodec([made.output.strip()])


# -- a lifecycle on the real time-skipping server, encrypted ---------------------------------


def payloads_in(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every Payload in a history, with where it sits. Search attributes are left out:
    the server must read them to index them, so no codec ever touches them."""
    if isinstance(message, Payload):
        yield path, message
        return
    for field, value in message.ListFields():
        if field.name == "search_attributes":
            continue
        where = f"{path}.{field.name}"
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            yield from payloads_in(value, where)
            continue
        # A repeated field, or a map (whose values are the messages).
        items = value.values() if field.message_type.GetOptions().map_entry else value
        for item in items:
            if isinstance(item, Message):
                yield from payloads_in(item, where)


@pytest.fixture
async def encrypted(
    time_skipping_env: WorkflowEnvironment, settings: Settings, engine: Engine
) -> AsyncIterator[tuple[Client, str]]:
    """A client and a worker that encrypt with KEY, on the shared test server."""
    client = Client(
        time_skipping_env.client.service_client,
        namespace="default",
        data_converter=data_converter([KEY]),
    )
    queue = f"tandem-codec-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine, task_queue=queue):
        yield client, queue


async def test_a_lifecycle_works_and_its_history_holds_only_ciphertext(
    encrypted: tuple[Client, str],
) -> None:
    client, queue = encrypted
    email = f"ada-{uuid.uuid4().hex[:8]}@secret-customer.test"
    signup = SignUp(company=f"Cipher {uuid.uuid4().hex[:6]}", contact_name="Ada", email=email)
    workflow_id = workflow_id_for(signup.customer_id)
    try:
        receipt = await lifecycles.sign_up(client, signup, load_plan("default"), queue)
        assert receipt.new

        async def kickoff_opened() -> list[Task]:
            return (await lifecycles.status(client, receipt.customer_id)).open_tasks

        [kickoff] = await eventually(kickoff_opened, 10, "the kickoff task opened")
        # A refusal still reads clearly: failures are encrypted too, and decrypted here.
        with pytest.raises(
            lifecycles.LifecycleError, match=r"result\.success_plan: Field required"
        ):
            await lifecycles.complete_task(
                client, TaskCompletion(task_id=kickoff.task_id, result={"kind": "kickoff"})
            )
        done = await lifecycles.complete_task(
            client,
            TaskCompletion(task_id=kickoff.task_id, result=example_result(TaskKind.kickoff)),
        )
        assert done.kind is TaskKind.kickoff

        history = (
            await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace="default", execution=WorkflowExecution(workflow_id=workflow_id)
                )
            )
        ).history
        found = list(payloads_in(history))
        kinds = {where.split(".")[2] for where, _ in found}
        assert kinds >= {  # so the check below is not vacuous
            "workflow_execution_started_event_attributes",
            # The lifecycle's records and emails run as local activities: their inputs
            # and results are in markers.
            "marker_recorded_event_attributes",
            "workflow_execution_update_accepted_event_attributes",
            "workflow_execution_update_completed_event_attributes",
        }, kinds
        plain = [(where, p) for where, p in found if p.metadata.get("encoding") != ENCODING]
        # Markers are written by the SDK's core, beneath the codec: a local activity's
        # holds its bookkeeping (sequence, type, times; its result is encrypted), and a
        # workflow.patched one the name of a code change. Neither holds customer data.
        markers = [p for where, p in plain if where.startswith(".events.marker_recorded")]
        assert {json.loads(p.data).get("id") or json.loads(p.data)["activity_type"]
                for p in markers} >= {"open_account", "record_task_result"}  # fmt: skip
        assert [where for where, p in plain if p not in markers] == [], "stored unencrypted"
        raw = history.SerializeToString()
        assert email.encode() not in raw and b"Every rep logs" not in raw

        # Without the key, nothing is readable, and the error says which key is missing.
        other = Client(client.service_client, data_converter=data_converter([OTHER_KEY]))
        with pytest.raises(PayloadDecryptionError, match="not among TANDEM_ENCRYPTION_KEYS"):
            await lifecycles.status(other, receipt.customer_id)
        no_key = Client(client.service_client, data_converter=pydantic_data_converter)
        with pytest.raises(Exception, match="binary/encrypted"):
            await lifecycles.status(no_key, receipt.customer_id)
    finally:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("test over")


# -- the codec server ------------------------------------------------------------------------


@pytest.fixture
async def codec_server() -> AsyncIterator[str]:
    port = free_port()
    app = codec_server_app(EncryptionCodec([KEY]), CODEC_TOKEN, origins=["http://localhost:8080"])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the codec server did not start"
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


async def test_the_codec_server_decodes_for_temporal_ui(codec_server: str) -> None:
    # What the worker stores for a sign-up: the pydantic payload, encrypted.
    email = "grace@secret-customer.test"
    signup = SignUp(company="Hopper", contact_name="Grace", email=email)
    sealed = await data_converter([KEY]).encode([signup])
    assert email.encode() not in sealed[0].SerializeToString()
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    ui = {"origin": "http://localhost:8080", "content-type": "application/json", **AUTH}

    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        # The browser's preflight, then the call, as Temporal's UI makes them.
        preflight = await http.options(
            "/decode",
            headers={
                "origin": ui["origin"],
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ui["origin"]
        for path in ("/decode", "/default/decode"):
            answer = await http.post(path, content=body, headers={**ui, "x-namespace": "default"})
            assert answer.status_code == 200, answer.text
            assert answer.headers["access-control-allow-origin"] == ui["origin"]
            decoded = json_format.Parse(answer.text, Payloads()).payloads
            assert json.loads(decoded[0].data)["email"] == email

        # Encode is the way back, for the UI's and CLI's inputs.
        encoded = await http.post("/encode", content=json.dumps({"payloads": []}), headers=ui)
        assert encoded.status_code == 200 and json.loads(encoded.text) == {}
        again = await http.post("/encode", content=answer.text, headers=ui)
        reencoded = json_format.Parse(again.text, Payloads()).payloads
        assert reencoded[0].metadata["encoding"] == ENCODING
        assert await EncryptionCodec([KEY]).decode(reencoded) == list(decoded)

        # Another origin gets no CORS grant; a payload under an unknown key, a clear 400.
        stranger = await http.options(
            "/decode",
            headers={"origin": "http://evil.test", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in stranger.headers
        foreign = await data_converter([OTHER_KEY]).encode(["x"])
        refused = await http.post(
            "/decode",
            content=json_format.MessageToJson(Payloads(payloads=foreign)),
            headers=ui,
        )
        assert refused.status_code == 400 and "not among" in refused.json()["message"]
        garbage = await http.post("/decode", content="not json", headers=ui)
        assert garbage.status_code == 400


def test_the_codec_server_needs_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("TANDEM_ENCRYPTION_KEYS", raising=False)
    refused = CliRunner().invoke(app, ["codec-server", "--port", str(free_port())])
    assert refused.exit_code == 1 and "no TANDEM_ENCRYPTION_KEYS" in refused.output


@pytest.mark.parametrize("token", [None, "", "short"])
def test_the_codec_server_will_not_start_without_a_token(token: str | None) -> None:
    with pytest.raises(codec.CodecServerError, match="TANDEM_CODEC_TOKEN"):
        codec.serve([KEY], port=free_port(), token=token)


async def test_the_codec_server_answers_only_with_the_token_and_to_its_own_host(
    codec_server: str,
) -> None:
    sealed = await data_converter([KEY]).encode(["secret words"])
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    refusals = {
        "no token": {},
        "another token": {"authorization": "Bearer " + "y" * 44},
        "the token, not as a bearer": {"authorization": CODEC_TOKEN},
        "non-ASCII": {"authorization": "Bearer é".encode()},
    }
    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        for why, headers in refusals.items():
            answer = await http.post("/decode", content=body, headers=headers)
            assert answer.status_code == 401, why
            assert "secret words" not in answer.text
        # A rebound DNS name: the browser sends the attacker's host name.
        rebound = await http.post(
            "/decode", content=body, headers={**AUTH, "host": "attacker.example"}
        )
        assert rebound.status_code == 400 and "secret words" not in rebound.text
        allowed = await http.post("/decode", content=body, headers=AUTH)
        assert allowed.status_code == 200 and "secret words" not in allowed.text
        assert json.loads(json_format.Parse(allowed.text, Payloads()).payloads[0].data) == (
            "secret words"
        )


async def test_the_codec_server_answers_to_the_configured_host_names() -> None:
    app = codec_server_app(EncryptionCodec([KEY]), CODEC_TOKEN, hosts=["codec.internal"])
    transport = httpx.ASGITransport(app=app)
    for base, status in (("http://codec.internal", 200), ("http://elsewhere.internal", 400)):
        async with httpx.AsyncClient(transport=transport, base_url=base) as http:
            assert (await http.post("/decode", content="{}", headers=AUTH)).status_code == status


@pytest.mark.integration
async def test_temporal_tools_decode_through_the_codec_server(
    codec_server: str, tmp_path: Path
) -> None:
    """Temporal's own CLI (the UI speaks the same protocol) against a dev server: the
    history shows ciphertext, and plaintext through --codec-endpoint."""
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    try:
        server.start()
        await server.ready(Settings(_env_file=None, temporal_address=server.address))  # type: ignore[call-arg]
        client = await Client.connect(server.address, data_converter=data_converter([KEY]))
        email = "grace@secret-customer.test"
        signup = SignUp(company="Hopper", contact_name="Grace", email=email)
        # Started only, never run (no worker polls this queue): its input is in the history.
        await client.start_workflow("CustomerLifecycle", signup, id="codec-cli", task_queue="none")

        async def show(*codec_endpoint: str) -> Payload:
            shown = await asyncio.create_subprocess_exec(
                find_binary("temporal"), "workflow", "show", "--workflow-id", "codec-cli",
                "--address", server.address, "--output", "json", *codec_endpoint,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(shown.communicate(), 30)
            assert shown.returncode == 0, err.decode()
            started = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]
            return json_format.ParseDict(started["input"]["payloads"][0], Payload())

        assert (await show()).metadata["encoding"] == ENCODING
        for endpoint in (codec_server, f"{codec_server}/{{namespace}}"):
            decoded = await show(
                "--codec-endpoint", endpoint, "--codec-auth", f"Bearer {CODEC_TOKEN}"
            )
            assert decoded.metadata["encoding"] == b"json/plain"
            assert json.loads(decoded.data)["email"] == email
    finally:
        server.cleanup()
