"""Throwaway servers for the scale-out run, and the per-test namespaces on them.

CLI (used by ``.ci/run``)::

    python tests/servers.py start DIR   # a Chroma server and a PostgreSQL cluster under DIR;
                                        # writes DIR/env.sh (the TM_TEST_* variables) and prints it
    python tests/servers.py stop DIR    # stops both (idempotent)

Both listen on 127.0.0.1 only, on free ports. PostgreSQL refuses to run as root, so as root the
cluster belongs to the ``postgres`` user (Debian's package creates it) and is driven through
``runuser``. Any failure exits non-zero with the server's log: the scale-out run must never be
skipped silently.

Fixture (imported by ``tests/conftest.py``): ``tm_backend`` gives each test the MemoryConfig
fields for those servers when ``TM_TEST_SESSION_STORE_URL`` / ``TM_TEST_CHROMA_HOST`` are set, each
test in its own namespace: a fresh PostgreSQL schema (``search_path`` in the URL) and a fresh Chroma
``collection_prefix``. Without the variables it gives ``{}`` (SQLite and embedded Chroma under the
test's ``tmp_path``).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

SESSION_STORE_URL_VAR = "TM_TEST_SESSION_STORE_URL"
CHROMA_HOST_VAR = "TM_TEST_CHROMA_HOST"
CHROMA_PORT_VAR = "TM_TEST_CHROMA_PORT"

PG_USER = "tm"
PG_DATABASE = "tm_test"
START_TIMEOUT = 90.0


# --- per-test namespaces -------------------------------------------------------------------------


def servers_configured() -> bool:
    return bool(os.environ.get(SESSION_STORE_URL_VAR) or os.environ.get(CHROMA_HOST_VAR))


_admin_engine: Any = None


def _admin() -> Any:
    global _admin_engine
    if _admin_engine is None:
        import sqlalchemy as sa

        _admin_engine = sa.create_engine(
            os.environ[SESSION_STORE_URL_VAR], isolation_level="AUTOCOMMIT"
        )
    return _admin_engine


def fresh_schema_url() -> str:
    """The session-store URL with a new, empty PostgreSQL schema as its search_path."""
    import sqlalchemy as sa

    base = os.environ[SESSION_STORE_URL_VAR]
    if not base.startswith("postgresql"):
        return base
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with _admin().connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"


def backend_overrides() -> dict[str, Any]:
    """MemoryConfig fields for the configured servers, in a namespace of their own."""
    fields: dict[str, Any] = {}
    if os.environ.get(SESSION_STORE_URL_VAR):
        fields["session_store_url"] = fresh_schema_url()
    if os.environ.get(CHROMA_HOST_VAR):
        fields["chroma_host"] = os.environ[CHROMA_HOST_VAR]
        fields["chroma_port"] = int(os.environ.get(CHROMA_PORT_VAR, "8000"))
    if fields:
        fields["collection_prefix"] = f"t{uuid.uuid4().hex[:16]}"
    return fields


def _tm_backend() -> Iterator[dict[str, Any]]:
    from tiered_memory.resources import reset_default_resources

    yield backend_overrides()
    reset_default_resources()  # close this test's engines, clients and worker (bounded)


try:
    import pytest
except ImportError:  # the CLI runs without pytest
    pass
else:
    tm_backend = pytest.fixture(_tm_backend, name="tm_backend")


# --- server lifecycle ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fail(message: str, log: Path | None = None) -> None:
    if log is not None and log.exists():
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
    sys.stderr.write(f"\nservers.py: {message}\n")
    raise SystemExit(1)


def _pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not candidates:
        _fail("PostgreSQL is not installed (apt-get install -y postgresql)")
    return Path(candidates[-1]).parent


def _as_pg_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str], log: Path, what: str) -> None:
    with log.open("ab") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        _fail(f"{what} failed (exit {code}): {' '.join(argv)}", log)


def start_postgres(directory: Path) -> str:
    bindir = _pg_bindir()
    data = directory / "pg"
    data.mkdir()
    log = directory / "pg.log"
    log.touch()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(log, "postgres", "postgres")
    _run(
        _as_pg_owner(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                *["-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"],
            ]
        ),
        log,
        "initdb",
    )
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {data} -F -c max_connections=300"
    _run(
        _as_pg_owner(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "start",
            ]
        ),
        log,
        "pg_ctl start",
    )
    (directory / "pg.port").write_text(str(port))
    base = f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}"
    import sqlalchemy as sa

    engine = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {PG_DATABASE}"))
    except Exception as exc:
        _fail(f"cannot create the test database: {exc}", log)
    finally:
        engine.dispose()
    return f"{base}/{PG_DATABASE}"


def _chroma_executable() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        _fail("the chroma CLI (from the chromadb package) is not on PATH")
    return str(found)


def start_chroma(directory: Path) -> int:
    port = free_port()
    log = directory / "chroma.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _chroma_executable(),
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--path",
                str(directory / "chroma"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (directory / "chroma.pid").write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _fail(f"chroma run exited with {process.returncode}", log)
        url = f"http://127.0.0.1:{port}/api/v2/heartbeat"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return port
        time.sleep(0.2)
    _fail(f"chroma run did not answer on 127.0.0.1:{port} within {START_TIMEOUT}s", log)
    raise AssertionError("unreachable")


def start(directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # the postgres user must reach its cluster inside
    env = {SESSION_STORE_URL_VAR: start_postgres(directory)}
    try:
        env[CHROMA_HOST_VAR] = "127.0.0.1"
        env[CHROMA_PORT_VAR] = str(start_chroma(directory))
    except BaseException:
        stop(directory)
        raise
    (directory / "env.sh").write_text("".join(f"export {k}='{v}'\n" for k, v in env.items()))
    return env


def stop(directory: Path) -> None:
    pid_file = directory / "chroma.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            for _ in range(50):
                os.killpg(pid, 0)
                time.sleep(0.1)
            os.killpg(pid, signal.SIGKILL)
        pid_file.unlink()
    data = directory / "pg"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_pg_owner([str(_pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            stdout=subprocess.DEVNULL,
            check=False,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.action == "start":
        env = start(args.directory)
        print("".join(f"{k}={v}\n" for k, v in env.items()), end="")
    else:
        stop(args.directory)


if __name__ == "__main__":
    main()
