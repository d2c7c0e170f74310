"""Files: digests (weights, inputs) and atomic writes (images, manifests)."""
from __future__ import annotations

import functools
import hashlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import GatysError


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes; remembered while the file keeps its size and modification time."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, modified_ns: int) -> str:
    return _sha256_uncached(path)


def _sha256_uncached(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> str:
    """Call write(stream) on a temporary file beside `path`, fsync it, then rename it over `path`.

    Returns the SHA-256 of the bytes written, read back before the rename: the digest of this
    writer's file, whatever another process renames over `path` after it.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # os.open with 0o666 lets the umask set the permissions, as for any new file.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        digest = _sha256_uncached(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            kept = "the existing file is unchanged" if path.exists() else "nothing was written"
            raise GatysError(f"cannot write {path}: {error.strerror or error}; {kept}") from error
        raise
    _fsync_directory(path.parent)
    return digest


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows it (POSIX); a no-op elsewhere."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
