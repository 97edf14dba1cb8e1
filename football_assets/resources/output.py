"""Where the summary goes: a folder or `s3://bucket/prefix`, replaced atomically. A failure no retry
can fix is an `OutputError` (one line); transient ones keep their types, so retries see them."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg

ENV_VAR = "FOOTBALL_OUTPUT_DIR"
S3_SCHEME = "s3://"
# A writer killed between write and rename leaves its temp file; older than this, it is not a
# concurrent writer's and is swept.
STALE_TEMP_SECONDS = 600

# Local errors that another attempt would hit again.
_PERMANENT_ERRNOS = {
    errno.ENOENT: "a folder on the path does not exist and cannot be created",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EEXIST: "a file is in the way of the folder",
    errno.EISDIR: "the target is a folder",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENAMETOOLONG: "the path is too long",
}
# S3 error codes that another attempt would hit again, with what to do about each.
_PERMANENT_S3_CODES = {
    "NoSuchBucket": "create the bucket or fix its name",
    "AccessDenied": "allow s3:PutObject/s3:GetObject/s3:ListBucket on it to this task's role",
    "AllAccessDisabled": "the bucket is disabled; use another",
    "InvalidAccessKeyId": "check the AWS credentials this process uses",
    "SignatureDoesNotMatch": "check the AWS credentials this process uses",
    "ExpiredToken": "renew the AWS credentials this process uses",
    "InvalidToken": "check the AWS credentials this process uses",
    "InvalidBucketName": "fix the bucket name",
    "PermanentRedirect": "set AWS_REGION to the bucket's region",
    "AuthorizationHeaderMalformed": "set AWS_REGION to the bucket's region",
    "403": "allow s3:ListBucket/s3:PutObject on it to this task's role",
    "404": "create the bucket or fix its name",
}


class OutputError(Exception):
    """The output location cannot be written (or read) and retrying will not change that."""


class OutputLocation(dg.ConfigurableResource):
    """The summary's destination: a folder (relative to the working directory) or s3://…"""

    location: str = "output"

    # --- the interface ----------------------------------------------------------------------

    def uri(self, name: str) -> str:
        """Absolute local path, or s3://bucket/prefix/name."""
        _check_name(name)
        if self._is_s3:
            bucket, key = self._s3_key(name)
            return f"{S3_SCHEME}{bucket}/{key}"
        return str(self._folder / name)

    def write_atomically(self, name: str, data: bytes, content_type: str = "text/csv") -> str:
        """Replace `name` with `data`; readers see the old or the new object, never a part."""
        if self._is_s3:
            self._s3_put(name, data, content_type)
        else:
            self._local_write(name, data)
        return self.uri(name)

    def read_bytes(self, name: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none."""
        if not self._is_s3:
            return Path(self.uri(name)).read_bytes()
        bucket, key = self._s3_key(name)
        client = _s3_client()
        try:
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            raise FileNotFoundError(self.uri(name)) from None
        except Exception as exc:
            raise self._s3_error(exc, f"cannot read {name}") from None

    def exists(self, name: str) -> bool:
        if not self._is_s3:
            return Path(self.uri(name)).is_file()
        bucket, key = self._s3_key(name)
        try:
            _s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except Exception as exc:
            if _s3_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise self._s3_error(exc, f"cannot look for {name}") from None

    def check_writable(self) -> None:
        """Cheap pre-flight: OutputError when the location cannot be written.

        Locally a temp file is created and removed in the folder. On S3 the bucket is asked
        for (HeadBucket): that proves it exists and this role may list it, not that a
        PutObject would be allowed, which only the write itself can tell without leaving an
        object (and, on a versioned bucket, a version) behind.
        """
        if self._is_s3:
            bucket, _ = self._s3_key("probe")
            try:
                _s3_client().head_bucket(Bucket=bucket)
            except Exception as exc:
                raise self._s3_error(exc, "cannot write") from None
            return
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self._folder):
                pass
        except OSError as exc:
            raise self._local_error(exc, "cannot write") from None

    # --- local ------------------------------------------------------------------------------

    @property
    def _is_s3(self) -> bool:
        return self.location.startswith(S3_SCHEME)

    @property
    def _folder(self) -> Path:
        return Path(self.location or ".").absolute()

    def _local_write(self, name: str, data: bytes) -> None:
        path = Path(self.uri(name))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _sweep_stale_temp_files(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise self._local_error(exc, f"cannot write {name}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                # On disk before the rename, so a crash cannot leave an empty file in its place.
                os.fsync(handle.fileno())
            # mkstemp creates 0600; the report is for people and other processes to read.
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS:
                raise self._local_error(exc, f"cannot write {name}") from None
            raise

    def _local_error(self, exc: OSError, action: str) -> OutputError | OSError:
        if exc.errno not in _PERMANENT_ERRNOS:
            return exc
        cause = _PERMANENT_ERRNOS[exc.errno]
        where = f" ({exc.filename})" if exc.filename else ""
        return OutputError(
            f"{ENV_VAR}={self.location}: {action} in {self._folder}: {cause}{where}; "
            f"make that folder writable by this user or set {ENV_VAR} to one that is"
        )

    # --- S3 ---------------------------------------------------------------------------------

    def _s3_key(self, name: str) -> tuple[str, str]:
        rest = self.location[len(S3_SCHEME) :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise OutputError(
                f"{ENV_VAR}={self.location}: no bucket in the location; "
                f"set it to s3://bucket or s3://bucket/prefix"
            )
        prefix = prefix.strip("/")
        return bucket, f"{prefix}/{name}" if prefix else name

    def _s3_put(self, name: str, data: bytes, content_type: str) -> None:
        bucket, key = self._s3_key(name)
        try:
            # One PutObject: S3 stores the object only once all of it arrived (and its
            # checksum, which botocore adds, matched), then replaces the old one at once.
            _s3_client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as exc:
            raise self._s3_error(exc, f"cannot write {name}") from None

    def _s3_error(self, exc: Exception, action: str) -> Exception:
        """A one-line OutputError for failures retrying cannot fix; others unchanged."""
        from botocore.exceptions import (  # type: ignore[import-untyped]  # no stubs shipped
            NoCredentialsError,
            NoRegionError,
            ParamValidationError,
        )

        bucket, _ = self._s3_key("x")
        head = f"{ENV_VAR}={self.location}: {action} in bucket {bucket!r}"
        if isinstance(exc, NoCredentialsError):
            return OutputError(
                f"{head}: no AWS credentials found; give this process a role "
                f"(ECS task role) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, NoRegionError):
            return OutputError(f"{head}: no AWS region configured; set AWS_REGION")
        if isinstance(exc, ParamValidationError):
            return OutputError(f"{head}: {_one_line(str(exc))}; fix the location")
        code = _s3_code(exc)
        if code in _PERMANENT_S3_CODES:
            message = _s3_message(exc)
            cause = f"{code}" + (f" ({message})" if message else "")
            if code in {"NoSuchBucket", "404"}:
                cause = f"the bucket does not exist ({code})"
            return OutputError(f"{head}: {cause}; {_PERMANENT_S3_CODES[code]}")
        return exc


def _s3_client() -> Any:
    # boto3 (a dependency of dagster-aws) resolves credentials, the region and the standard
    # AWS_ENDPOINT_URL itself, so an emulator on loopback works like S3. A session of its own:
    # boto3's default session caches what it resolved first, whatever the environment says now.
    import boto3  # type: ignore[import-untyped]  # ships no type stubs

    return boto3.session.Session().client("s3")


def _s3_code(exc: Exception) -> str | None:
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code") or "") or None


def _s3_message(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None)
    return _one_line(str(response.get("Error", {}).get("Message") or "")) if response else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts or "\\" in name:
        raise ValueError(f"{name!r} is not a relative file name inside the output location")


def _sweep_stale_temp_files(path: Path) -> None:
    """Remove temp files a killed writer left (not a concurrent writer's fresh one)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                stale.unlink()
