"""OutputLocation: a local folder or s3://bucket/prefix, written atomically for readers.

S3 is moto's standalone server on loopback (real boto3 over HTTP), started in its own process
group per module and stopped in `finally`.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from football_assets.definitions import build_definitions
from football_assets.refresh import RefreshFailed, refresh
from football_assets.resources.api import SnapshotFootballDataApi
from football_assets.resources.output import STALE_TEMP_SECONDS, OutputError, OutputLocation
from football_assets.resources.warehouse import Warehouse

# A large payload makes a non-atomic write observable: writing 8 MiB takes many syscalls.
PAYLOAD_SIZE = 8 * 1024 * 1024
OLD, NEW = b"a" * PAYLOAD_SIZE, b"b" * PAYLOAD_SIZE
# Distinctive, so a test can tell it never reached an error message.
SECRET_ACCESS_KEY = "moto-secret-key-never-printed"


# ---- moto's standalone server ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """`moto_server` on a free loopback port, in its own process group; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert moto, "moto_server not installed (pip install -e '.[dev]')"
    log = (log_dir / f"moto_{port}.log").open("wb")
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with everything it started
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto_server exited with {process.returncode}")
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not answer within 30 s")
                time.sleep(0.1)
        yield url
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def aws_env(endpoint: str) -> dict[str, str]:
    """What a process needs to talk to the moto server as if it were AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> object:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in aws_env(moto_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    import boto3

    return boto3.client("s3")


@pytest.fixture
def bucket(s3: object) -> str:
    name = f"summary-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


# ---- shared behaviour, local and S3 ---------------------------------------------------------


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])  # a moto server
def location(request: pytest.FixtureRequest, tmp_path: Path) -> OutputLocation:
    if request.param == "local":
        return OutputLocation(location=str(tmp_path / "out"))
    bucket_name = request.getfixturevalue("bucket")
    return OutputLocation(location=f"s3://{bucket_name}/reports/daily")


def test_write_read_overwrite(location: OutputLocation) -> None:
    assert not location.exists("summary.csv")
    uri = location.write_atomically("summary.csv", b"a,b\r\n1,2\r\n")
    assert uri == location.uri("summary.csv")
    assert location.exists("summary.csv")
    assert location.read_bytes("summary.csv") == b"a,b\r\n1,2\r\n"
    location.write_atomically("summary.csv", b"a,b\r\n3,4\r\n")
    assert location.read_bytes("summary.csv") == b"a,b\r\n3,4\r\n"
    location.check_writable()


def test_reading_a_missing_object_is_file_not_found(location: OutputLocation) -> None:
    with pytest.raises(FileNotFoundError):
        location.read_bytes("nothing.csv")


def test_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert OutputLocation().uri("summary.csv") == str(tmp_path / "output" / "summary.csv")
    assert OutputLocation(location="s3://b/p/").uri("x.csv") == "s3://b/p/x.csv"
    assert OutputLocation(location="s3://b").uri("x.csv") == "s3://b/x.csv"
    for bad in ("../x.csv", "/etc/passwd", ""):
        with pytest.raises(ValueError):
            OutputLocation(location=str(tmp_path)).uri(bad)


def test_readers_never_see_a_partial_object(location: OutputLocation) -> None:
    """A reader polling while large objects are replaced sees whole ones only, and always one:
    never a part, never none (as a delete before the put would leave meanwhile)."""
    location.write_atomically("summary.csv", OLD)
    seen: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []
    reads = 0
    first_read = threading.Event()
    stop = threading.Event()

    def read_loop() -> None:
        nonlocal reads
        try:
            while not stop.is_set():
                data = location.read_bytes("summary.csv")
                reads += 1
                first_read.set()
                if data not in (OLD, NEW):
                    seen.append((len(data), data[:1] + data[-1:]))
        except BaseException as exc:  # recorded: the test fails on it, not the thread alone
            errors.append(exc)
        finally:
            first_read.set()

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        assert first_read.wait(timeout=60)
        before = reads
        for index in range(12):
            location.write_atomically("summary.csv", NEW if index % 2 == 0 else OLD)
        during = reads - before
    finally:
        stop.set()
        reader.join(timeout=60)
    assert not reader.is_alive()
    assert not errors, f"the reader failed: {errors[0]!r}"
    assert during > 0, "the reader read nothing while the objects were replaced"
    assert not seen, f"readers saw {len(seen)} partial objects, e.g. {seen[:3]}"


# ---- local ----------------------------------------------------------------------------------


# Every file opened and every rename in this process, while a test listens. Audit hooks cannot
# be removed, so one hook is installed once and records only while `_AUDIT["on"]` is set.
_AUDIT: dict[str, Any] = {"on": False, "opened": [], "renamed": []}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _AUDIT["on"]:
        return
    if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _AUDIT["opened"].append((os.fsdecode(args[0]), args[1], args[2]))
    elif event == "os.rename":
        _AUDIT["renamed"].append((os.fsdecode(args[0]), os.fsdecode(args[1])))


sys.addaudithook(_audit)


def writes(mode: str | None, flags: int) -> bool:
    if mode is not None:
        return any(c in mode for c in "wax+")
    return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC | os.O_CREAT))


def test_local_summary_is_replaced_by_a_rename_never_written_in_place(tmp_path: Path) -> None:
    """Deterministically, not by racing a reader: the target is never opened for writing, a
    rename puts the new file in its place, and a reader that had the old file open keeps
    reading the old file whole."""
    target = tmp_path / "summary.csv"
    target.write_bytes(OLD)
    old_inode = target.stat().st_ino
    location = OutputLocation(location=str(tmp_path))
    with target.open("rb") as reader:
        _AUDIT.update(on=True, opened=[], renamed=[])
        try:
            location.write_atomically("summary.csv", NEW)
        finally:
            _AUDIT["on"] = False
        assert reader.read() == OLD

    written = [(path, mode) for path, mode, flags in _AUDIT["opened"] if writes(mode, flags)]
    assert written, "the new file was written somewhere"
    assert all(Path(path).resolve() != target for path, _ in written), written
    ((source, destination),) = _AUDIT["renamed"]
    assert Path(destination).resolve() == target and Path(source).parent == tmp_path
    assert target.stat().st_ino != old_inode
    assert target.read_bytes() == NEW


def test_local_file_is_readable_by_others(tmp_path: Path) -> None:
    path = Path(OutputLocation(location=str(tmp_path)).write_atomically("summary.csv", b"x"))
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_local_stale_temp_files_are_swept_fresh_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / ".summary.csv.dead1234.tmp"
    fresh = tmp_path / ".summary.csv.busy5678.tmp"  # a concurrent writer's, mid-write
    unrelated = tmp_path / ".other.csv.old.tmp"
    for path in (stale, fresh, unrelated):
        path.write_bytes(b"partial")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(unrelated, (old, old))
    OutputLocation(location=str(tmp_path)).write_atomically("summary.csv", b"x")
    assert not stale.exists()
    assert fresh.exists() and unrelated.exists()


def test_local_location_under_a_file_is_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    output = OutputLocation(location=str(blocker / "output"))
    for attempt in (
        lambda: output.write_atomically("summary.csv", b"x"),
        output.check_writable,
    ):
        with pytest.raises(OutputError) as raised:
            attempt()
        message = str(raised.value)
        assert "\n" not in message
        assert message.startswith(f"FOOTBALL_OUTPUT_DIR={blocker / 'output'}: cannot write")
        assert "set FOOTBALL_OUTPUT_DIR" in message


@contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """A folder this process cannot create files in, even as root (immutable attribute)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root without a working chattr: cannot deny a write")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_local_permission_denied_is_output_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    output = OutputLocation(location=str(folder))
    output.write_atomically("summary.csv", b"old")
    with unwritable(folder):
        for attempt in (
            lambda: output.write_atomically("summary.csv", b"new"),
            output.check_writable,
        ):
            with pytest.raises(OutputError) as raised:
                attempt()
            message = str(raised.value)
            assert "\n" not in message and f"FOOTBALL_OUTPUT_DIR={folder}" in message
            assert "not permitted" in message or "permission denied" in message
    assert output.read_bytes("summary.csv") == b"old"


def test_a_folder_root_may_access_but_nobody_can_create_is_output_error(tmp_path: Path) -> None:
    """/proc passes os.access for root, yet nothing can be created there (ENOENT): a cause no
    retry changes, so an OutputError naming the variable, not an OSError to retry."""
    output = OutputLocation(location="/proc/x/output")
    for attempt in (lambda: output.write_atomically("summary.csv", b"x"), output.check_writable):
        with pytest.raises(OutputError) as raised:
            attempt()
        message = str(raised.value)
        assert "\n" not in message and message.startswith("FOOTBALL_OUTPUT_DIR=/proc/x/output")
        assert "does not exist and cannot be created" in message


def test_the_summary_into_a_folder_that_cannot_exist_fails_once(
    warehouse: Warehouse, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(
        SnapshotFootballDataApi(), warehouse, OutputLocation(location="/proc/x")
    )
    with pytest.raises(RefreshFailed) as raised:
        refresh(defs, instance, echo=lambda _: None)
    assert str(raised.value).startswith("summary_csv: FOOTBALL_OUTPUT_DIR=/proc/x: cannot write")
    retried = instance.get_records_for_run(
        raised.value.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
    ).records
    assert retried == []  # three attempts would change nothing


def fill(folder: Path) -> None:
    """Write a file in `folder` until its file system says it is full."""
    filler = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(filler, bytes(4096)):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(filler)


def test_a_full_folder_is_output_error(tmp_path: Path) -> None:
    folder = tmp_path / "full"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("needs root and mount rights for a tiny file system to fill")
    try:
        fill(folder)
        output = OutputLocation(location=str(folder))
        with pytest.raises(OutputError) as raised:
            output.write_atomically("summary.csv", bytes(16 * 1024))
        assert "no space left on the device" in str(raised.value)
        assert str(raised.value).startswith(f"FOOTBALL_OUTPUT_DIR={folder}")
        assert [p.name for p in folder.iterdir()] == ["filler"]  # no temp file left behind
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# ---- S3 -------------------------------------------------------------------------------------


def test_s3_object_lands_under_the_prefix(s3: object, bucket: str) -> None:
    output = OutputLocation(location=f"s3://{bucket}/reports/")
    uri = output.write_atomically("summary.csv", b"x,y\r\n", content_type="text/csv")
    assert uri == f"s3://{bucket}/reports/summary.csv"
    head = s3.head_object(Bucket=bucket, Key="reports/summary.csv")  # type: ignore[attr-defined]
    assert head["ContentType"] == "text/csv"
    assert head["ContentLength"] == 5


def test_s3_missing_bucket_is_output_error_naming_it(s3: object) -> None:
    output = OutputLocation(location="s3://no-such-bucket-here/reports")
    for attempt in (
        lambda: output.write_atomically("summary.csv", b"x"),
        output.check_writable,
        lambda: output.read_bytes("summary.csv"),
    ):
        with pytest.raises(OutputError) as raised:
            attempt()
        message = str(raised.value)
        assert "\n" not in message
        assert message.startswith("FOOTBALL_OUTPUT_DIR=s3://no-such-bucket-here/reports:")
        assert "'no-such-bucket-here'" in message and "does not exist" in message
        assert SECRET_ACCESS_KEY not in message and "testing" not in message


def test_s3_without_credentials_is_output_error(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # No instance metadata service here: boto3 must not wait for one.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(OutputError, match="no AWS credentials found"):
        OutputLocation(location=f"s3://{bucket}").write_atomically("summary.csv", b"x")
