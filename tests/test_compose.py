"""The production stack's files, checked without a container engine: docker-compose.yml's
structure, the Dockerfile's promises, what the image's `pip install .` really ships (a
wheel built from the Docker build context), that importing it touches no network and
writes nothing, and the namespace script against a real Temporal dev server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from settings import DEV_SECRET, Settings
from tests.fault_support import ROOT, DevServer

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


# Settings the compose stack leaves at their defaults, and why; any other setting must be
# set for the worker and the API (a new one fails the test until someone decides).
DEFAULT_IS_RIGHT_IN_COMPOSE = {
    "plans_dir": "the built-in plans; mount a folder and set it to add templates",
    "temporal_ui_port": "read only by the embedded dev server of `tandem run`",
    "smtp_username": "Mailpit takes mail without a login",
    "smtp_password": "Mailpit takes mail without a login",
    "smtp_timeout_seconds": "20 s suits a relay on the same network",
    "email_files": "the stack has a relay (Mailpit): no .eml files are written",
    "smtp_tls_ca": "Mailpit on the compose network speaks plain SMTP (no login)",
    "webhook_tolerance_seconds": "product default (5 minutes of clock skew)",
    "survey_link_days": "product default",
    "plan_link_days": "product default",
    # Per client address: right while the API is published directly, as here; behind a
    # proxy, set TANDEM_TRUSTED_PROXIES to its address so its X-Forwarded-For counts.
    "webhook_rate_per_minute": "product default",
    "login_rate_per_minute": "product default",
    "trusted_proxies": "the API is published directly: no proxy to trust",
    "codec_hosts": "the codec server is reached on loopback (127.0.0.1:8081) only",
    # The compose stack runs its own Temporal on the private network; these are for an
    # existing cluster instead (README: "An existing Temporal cluster").
    "temporal_tls_cert": "plain gRPC to the compose Temporal",
    "temporal_tls_key": "plain gRPC to the compose Temporal",
    "temporal_tls_ca": "plain gRPC to the compose Temporal",
    "temporal_tls": "plain gRPC to the compose Temporal",
    "temporal_api_key": "the compose Temporal has no API keys",
    "workflow_sandbox": "product default (the tests run lifecycles in the strict sandbox)",
    "staff_email": "for the CLI of one person; the stack's processes act for everyone",
    "events_retention_days": "product default (30 days of raw product events)",
    # Outbound webhooks reach the team's own services on the internet; private addresses
    # stay refused, and the retry schedule is the product's (about three days).
    "webhooks_allow_private": "private addresses refused, as in production",
    "webhooks_dispatch_seconds": "product default",
    "webhooks_attempt_timeout_seconds": "product default (15 s, the Standard's advice)",
    "webhooks_first_retry_seconds": "product default",
    "webhooks_longest_retry_seconds": "product default",
    "webhooks_give_up_seconds": "product default (about three days)",
    "webhooks_rotation_seconds": "product default",
    "webhooks_retention_days": "product default (30 days of delivered events)",
    "digest_every_days": "product default (weekly)",
    "digest_time_of_day": "product default",
}


def env_names(field: str) -> list[str]:
    """The environment variables a settings field reads, as pydantic-settings sees them."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{Settings.model_config.get('env_prefix', '')}{field}".upper()]


def setting_of(env: dict[str, str], field: str) -> str | None:
    return next((env[name] for name in env_names(field) if name in env), None)


def interpolate(value: str, values: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with `values` as the .env."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.groups()
        if values.get(name):
            return values[name]
        if operator and operator.endswith("?"):
            raise KeyError(f"{name} is required: {rest}")
        return rest or ""

    return INTERPOLATION.sub(one, value)


def image_tag(image: str) -> str | None:
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


# -- docker-compose.yml ---------------------------------------------------------------------


def test_every_service_runs_a_pinned_image_or_the_project_build(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {"postgres", "temporal", "temporal-ui", "mailpit", "worker", "api"}
    assert expected <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "image" in service:
            tag = image_tag(service["image"])
            assert tag and tag != "latest" and re.search(r"\d", tag), (
                f"{name}: {service['image']} is not pinned to an explicit version"
            )
    for name in ("worker", "api"):
        assert services[name]["build"] == "." and services[name]["image"].startswith("tandem:")


def test_published_host_ports_do_not_clash(services: dict[str, dict[str, Any]]) -> None:
    published: list[tuple[str, str, str, str]] = []  # host ip, host port, protocol, service
    for name, service in services.items():
        for entry in service.get("ports", []):
            spec, _, protocol = str(entry).partition("/")
            parts = spec.split(":")
            assert len(parts) in (2, 3), f"{name}: publish {entry} with an explicit host port"
            host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
            published.append((host_ip, parts[-2], protocol or "tcp", name))
            # Only the API faces the network; the rest is for the operator on this host.
            assert name == "api" or host_ip == "127.0.0.1", f"{name} publishes {entry}"
    for n, (ip, port, protocol, name) in enumerate(published):
        for other_ip, other_port, other_protocol, other in published[n + 1 :]:
            same_address = ip == other_ip or "0.0.0.0" in (ip, other_ip)
            clash = same_address and (port, protocol) == (other_port, other_protocol)
            assert not clash, f"{name} and {other} both publish {ip}:{port}/{protocol}"


def test_the_worker_and_the_api_get_every_setting_they_need(
    services: dict[str, dict[str, Any]],
) -> None:
    worker, api = services["worker"]["environment"], services["api"]["environment"]
    # The API verifies the links the worker signs: one environment for both.
    assert worker == api
    known = {name for field in Settings.model_fields for name in env_names(field)}
    if "encryption_keys" not in Settings.model_fields:
        known.add("TANDEM_ENCRYPTION_KEYS")  # read through codec.py once settings has it
    unknown = [k for k in worker if k.startswith("TANDEM_") and k not in known]
    assert not unknown, f"settings that do not exist (typos?): {unknown}"

    required = [
        "temporal_address", "database_url", "smtp_host", "smtp_port", "smtp_starttls",
        "secret_key", "webhook_secret", "production", "public_url", "api_host",
    ]  # fmt: skip
    # Derived too: any setting whose default only makes sense on a developer's machine.
    for field, info in Settings.model_fields.items():
        if info.default == DEV_SECRET or "127.0.0.1" in str(info.default):
            required.append(field)
    missing = [f for f in required if setting_of(worker, f) is None]
    assert not missing, f"not set for the worker and API: {missing}"
    # Every other setting is a decision too: set in compose, or its default is right.
    undecided = [
        f
        for f in Settings.model_fields
        if setting_of(worker, f) is None and f not in DEFAULT_IS_RIGHT_IN_COMPOSE
    ]
    assert not undecided, (
        f"settings neither set in docker-compose.yml (x-tandem-env) nor listed in "
        f"DEFAULT_IS_RIGHT_IN_COMPOSE with a reason: {undecided}"
    )

    assert setting_of(worker, "production") == "true"
    for secret in ("secret_key", "webhook_secret"):  # from .env, never written here
        match = INTERPOLATION.fullmatch(setting_of(worker, secret) or "")
        assert match and match.group(2) == ":?", f"{secret} must be a required ${{VAR:?}}"
    assert setting_of(worker, "smtp_host") in services
    assert setting_of(worker, "temporal_address").split(":")[0] in services  # type: ignore[union-attr]
    url = setting_of(worker, "database_url") or ""
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url


def test_the_compose_environment_makes_valid_production_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the containers would get, read by the real Settings: types parse, and the
    production guard finds no development secret."""
    dotenv = {
        name: f"{name.lower()}-value"
        for name in ("POSTGRES_PASSWORD", "TEMPORAL_DB_PASSWORD", "TANDEM_DB_PASSWORD")
    }
    dotenv |= {"TANDEM_SECRET_KEY": "s" * 40, "TANDEM_WEBHOOK_SECRET": "w" * 40}
    for name in list(os.environ):
        if name.startswith("TANDEM_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    for name, value in services["api"]["environment"].items():
        monkeypatch.setenv(name, interpolate(str(value), dotenv))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.production and not settings.insecure_defaults()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "mailpit",
        1025,
        False,
    )
    assert settings.resolved_database_url.endswith("@postgres:5432/tandem")
    assert "tandem_db_password-value" in settings.resolved_database_url
    with pytest.raises(KeyError, match="TANDEM_SECRET_KEY is required"):
        interpolate(services["api"]["environment"]["TANDEM_SECRET_KEY"], {})


def test_the_api_runs_as_many_processes_as_the_benchmarks_measure(
    services: dict[str, dict[str, Any]],
) -> None:
    """A Python process uses about one CPU: the API runs several uvicorn workers, their
    number from .env, and `make bench` measures it as deployed."""
    from bench.apiproc import API_PROCESSES

    command = services["api"]["command"]
    processes = command[command.index("--workers") + 1]
    assert interpolate(processes, {}) == str(API_PROCESSES)
    assert interpolate(processes, {"TANDEM_API_PROCESSES": "4"}) == "4"


def test_services_start_in_order_and_wait_for_real_readiness(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            else:  # a one-shot set-up job, which must be allowed to finish
                assert condition == "service_completed_successfully", f"{name} -> {target}"
                assert services[target].get("restart", "no") not in ("always", "unless-stopped")

    def waits_for(name: str) -> set[str]:
        direct = set(services[name].get("depends_on") or {})
        return direct.union(*(waits_for(t) for t in direct)) if direct else set()

    for name in services:
        assert name not in waits_for(name), f"{name} waits for itself"
    for app in ("worker", "api"):
        assert {"postgres", "temporal-schema", "temporal", "temporal-namespace"} <= waits_for(app)
    assert "mailpit" in waits_for("worker")
    assert services["worker"]["command"] == ["tandem", "worker"]
    assert services["api"]["command"][:3] == ["uvicorn", "--factory", "api.main:create_app"]
    assert services["api"]["command"][3:7] == ["--host", "0.0.0.0", "--port", "8000"]


def test_the_files_compose_mounts_exist_and_parse(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    scripts = sorted((ROOT / "deploy").rglob("*.sh"))
    assert scripts
    for script in scripts:
        assert os.access(script, os.X_OK), f"{script} is not executable"
        check = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, f"{script}: {check.stderr}"
    for config in (ROOT / "deploy/temporal/dynamicconfig").glob("*.yaml"):
        for key, entries in yaml.safe_load(config.read_text()).items():
            assert isinstance(entries, list) and all("value" in e for e in entries), key
    dynamic = services["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert (ROOT / "deploy/temporal/dynamicconfig" / Path(dynamic).name).exists()
    example = (ROOT / "deploy/env.example").read_text()
    needed = {m.group(1) for m in INTERPOLATION.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}
    assert needed and all(f"\n{name}=" in example for name in needed), needed


# -- Dockerfile and .dockerignore -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
            pending = ""
    return instructions


def test_the_dockerfile_builds_at_build_time_and_runs_unprivileged() -> None:
    steps = dockerfile_instructions()
    froms = [args for kind, args in steps if kind == "FROM"]
    assert len(froms) == 1 and froms[0].startswith("python:3.11")
    tag = image_tag(froms[0]) or ""
    assert re.match(r"3\.11\.\d+-slim", tag), f"base image not pinned: {froms[0]}"
    runs = [args for kind, args in steps if kind == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert installs and all(" . " in f"{r} " for r in installs)
    assert not any(re.search(r"(^|\s)(-e|--editable)\s", r) for r in installs)
    # Bytecode is compiled by pip at build time; at run time Python writes none.
    assert all("--compile" in r for r in installs)
    envs = " ".join(args for kind, args in steps if kind == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in envs
    users = [(i, args) for i, (kind, args) in enumerate(steps) if kind == "USER"]
    assert users and users[-1][1].split(":")[0] not in ("root", "0")
    assert users[-1][0] > max(i for i, (kind, _) in enumerate(steps) if kind == "RUN")
    [command] = [json.loads(args) for kind, args in steps if kind in ("CMD", "ENTRYPOINT")]
    assert command == ["tandem", "worker"]
    assert not any(kind == "ADD" for kind, _ in steps)  # nothing fetched from a URL


def dockerignore_patterns() -> list[re.Pattern[str]]:
    """.dockerignore as Docker reads it: patterns anchored at the context's root, `*`
    within one path segment, `**` across segments; a match excludes everything below."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not supported by this test"
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", line.strip("/")):
            regex += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                part, re.escape(part)
            )
        patterns.append(re.compile(f"{regex}(/.*)?"))
    return patterns


def build_context(destination: Path) -> list[str]:
    """Copy what `docker build .` would send; return the excluded top-level entries."""
    patterns = dockerignore_patterns()
    excluded: list[str] = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT).as_posix()
        if any(p.fullmatch(relative) for p in patterns):
            if "/" not in relative:
                excluded.append(relative)
            continue
        if path.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return excluded


IMPORT_AUDIT = textwrap.dedent(
    """
    import importlib, json, os, pkgutil, sys

    site, root = sys.argv[1], sys.argv[2]
    WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    NETWORK = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
               "socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request"}
    FILES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link",
             "os.truncate", "os.chmod", "shutil.copyfile", "shutil.rmtree"}
    # Alembic's env.py and revisions run inside Alembic's context, never on import.
    SCRIPTS_ONLY = {"migrations"}
    seen = []
    recording = True

    def audit(event, args):
        if not recording:
            return
        if event in NETWORK or event in FILES:
            seen.append([event, repr(args)[:300]])
        elif event == "open":
            path, mode, flags = args
            if (mode and set(mode) & set("wax+")) or (flags or 0) & WRITES:
                seen.append([event, repr(args)[:300]])

    sys.addaudithook(audit)
    names = []
    for entry in sorted(os.listdir(site)):
        path = os.path.join(site, entry)
        if entry.endswith(".py"):
            names.append(entry[:-3])
        elif entry not in SCRIPTS_ONLY and os.path.isfile(os.path.join(path, "__init__.py")):
            names.append(entry)
            names += [m.name for m in pkgutil.walk_packages([path], entry + ".")]
    for name in names:
        importlib.import_module(name)
    recording = False
    def from_source(module):  # the checkout, not its virtualenv
        path = getattr(module, "__file__", None) or ""
        return path.startswith(root + os.sep) and not path.startswith(sys.prefix + os.sep)

    outside = sorted(name for name, module in list(sys.modules.items()) if from_source(module))
    print(json.dumps({"modules": names, "events": seen, "from_the_source_tree": outside}))
    """
)

# After the audit: what a container does first, from the installed wheel alone.
FIRST_START = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from api.main import create_app
    from activities.rendering import preview
    from db.engine import make_engine
    from db.migrate import upgrade
    from plans import load_plan
    from settings import Settings

    scratch = Path(sys.argv[1])
    settings = Settings(_env_file=None, var_dir=scratch, database_url=f"sqlite:///{scratch}/r.db")
    upgrade(make_engine(settings.resolved_database_url))
    create_app(settings)
    load_plan("default")
    preview("welcome")
    print("started")
    """
)


def test_the_image_installs_every_module_and_importing_them_is_quiet(tmp_path: Path) -> None:
    """`pip install .` from the Docker build context, then import every module it
    installed in a fresh interpreter, from an empty working directory and HOME: no
    socket is opened, no file is written, no module comes from the source tree."""
    context, wheels, site = tmp_path / "context", tmp_path / "wheels", tmp_path / "site"
    excluded = build_context(context)
    assert {".env", ".venv", "var", ".git", "tests"} & set(os.listdir(ROOT)) <= set(excluded)
    assert (context / "pyproject.toml").exists() and (context / "README.md").exists()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(context)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("tandem-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.split("/")[0] for name in archive.namelist()}
        archive.extractall(site)
    # What only developers run stays out of the image.
    assert not {"bench", "tests"} & shipped, sorted(shipped)

    empty, home = tmp_path / "cwd", tmp_path / "home"
    empty.mkdir()
    home.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") and k != "DATABASE_URL"
    }
    env |= {"PYTHONPATH": str(site), "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    audit = subprocess.run(
        [sys.executable, "-c", IMPORT_AUDIT, str(site), str(ROOT)],
        cwd=empty, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr[-3000:]
    report = json.loads(audit.stdout.strip().splitlines()[-1])
    for entry_point in ("cli", "worker", "api.main", "lifecycles", "settings", "codec"):
        assert entry_point in report["modules"], f"the wheel lacks {entry_point}"
    assert report["events"] == [], "network or file writes at import time"
    assert report["from_the_source_tree"] == [], "modules the wheel does not contain"
    assert list(empty.iterdir()) == [] and list(home.iterdir()) == []

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    started = subprocess.run(
        [sys.executable, "-c", FIRST_START, str(scratch)],
        cwd=empty, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert started.returncode == 0 and "started" in started.stdout, started.stderr[-3000:]


# -- the namespace script, against a real server ---------------------------------------------


@pytest.mark.integration
async def test_the_namespace_script_sets_up_tandem_on_a_real_server(tmp_path: Path) -> None:
    """deploy/temporal/create-namespace.sh with the `temporal` CLI (admin-tools ships the
    same) against a dev server: the namespace and both search attributes, twice over."""
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    namespace = "tandem-compose-check"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": server.address,
        "DEFAULT_NAMESPACE": namespace,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    try:
        server.start()
        await server.ready(Settings(_env_file=None, temporal_address=server.address))  # type: ignore[call-arg]
        for _ in range(2):  # every `docker compose up` runs it again
            run = subprocess.run(
                ["sh", str(ROOT / "deploy/temporal/create-namespace.sh")],
                env=env, capture_output=True, text=True, timeout=90,
            )  # fmt: skip
            assert run.returncode == 0, run.stdout + run.stderr
            assert f"Namespace {namespace} is ready" in run.stdout
        listed = subprocess.run(
            ["temporal", "operator", "search-attribute", "list", "--namespace", namespace,
             "--output", "json"],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        attributes = json.loads(listed.stdout)
        custom = attributes.get("customAttributes") or attributes.get("custom_attributes") or {}
        assert {custom.get("TandemPhase"), custom.get("TandemQuadrant")} <= {
            "INDEXED_VALUE_TYPE_KEYWORD",
            "Keyword",
        }, attributes
    finally:
        server.cleanup()
