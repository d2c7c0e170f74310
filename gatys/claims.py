"""Claims: one writer per job in a store that many processes and machines share.

A claim is a file, DIRECTORY/jobs/<id>.claim, holding its owner (host, pid, a random token) and
made by an exclusive create: a hard link of a file written beside it, so it is never seen half
written. The owner keeps it fresh by touching it (its modification time is the heartbeat) and
removes it after the job's manifest is written. Another process leaves a job with a live claim
alone, and takes the claim over when it is older than the lease, or at once when its owner was a
process of this host that no longer exists. What this relies on, on a local disk as on NFS (v3
and later): that link (without hard links, O_CREAT | O_EXCL) and rename are atomic, and that the
machines' clocks agree to well within the lease (NTP); docs/reliability.md says more.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LEASE = 120.0  # seconds without a heartbeat after which a claim's owner counts as dead


@dataclass
class Claim:
    """A claim this process holds on one job."""

    path: Path
    token: str
    lost: bool = field(default=False)

    def held(self) -> bool:
        """True while the claim file is still this claim (not taken over after an expiry)."""
        if not self.lost:
            record = read_record(self.path)
            self.lost = record is None or record.get("token") != self.token
        return not self.lost

    def touch(self) -> None:
        if self.held():
            try:
                os.utime(self.path)
            except OSError:
                self.lost = True

    def release(self) -> None:
        """Remove the claim if it is still this one's."""
        if self.held():
            self.path.unlink(missing_ok=True)
        self.lost = True


def owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def acquire(path: Path, lease: float = DEFAULT_LEASE) -> Claim | None:
    """The claim at `path`, or None while another owner's claim is alive (gatys/claims.py's rules)."""
    for _ in range(3):
        token = secrets.token_hex(8)
        if _create(path, {**owner(), "token": token, "since": time.time(), "lease": lease}):
            return Claim(path, token)
        if not _take_over_if_expired(path, lease):
            return None
    return None


def _create(path: Path, record: dict) -> bool:
    """Make `path` holding `record` unless it exists: written aside, then hard-linked into place, so a
    claim is never seen half written (the link is the exclusive create, atomic on NFS too)."""
    aside = path.with_name(f".{path.name}.{record['token']}.new")
    with open(aside, "w") as stream:
        json.dump(record, stream)
        stream.flush()
        os.fsync(stream.fileno())
    try:
        os.link(aside, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: an exclusive create, then the record
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as stream:
            json.dump(record, stream)
            stream.flush()
            os.fsync(stream.fileno())
        return True
    finally:
        aside.unlink(missing_ok=True)


def holder(path: Path, lease: float = DEFAULT_LEASE) -> dict | None:
    """The owner of a live claim at `path` (host, pid), or None when there is none or its owner is dead."""
    record, age = read_record(path), _age(path)
    if age is None or _dead(record, age, lease):
        return None
    return record or {"host": "?", "pid": "?"}


def _dead(record: dict | None, age: float, lease: float) -> bool:
    """True when a claim's owner is gone: no heartbeat for its lease (the one it was taken with, else
    `lease`) seconds, or a process of this host that has ended."""
    promised = record.get("lease") if record is not None else None
    if age > (promised if isinstance(promised, (int, float)) else lease):
        return True
    if record is None or record.get("host") != socket.gethostname() or not isinstance(record.get("pid"), int):
        return False  # another machine's process (or a claim being written): only the lease can tell
    try:
        os.kill(record["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return _zombie(record["pid"])


def _zombie(pid: int) -> bool:
    """A process that ended and was not yet reaped by its parent (Linux's /proc; elsewhere False)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _take_over_if_expired(path: Path, lease: float) -> bool:
    """Move an expired claim aside (one taker wins the rename); True when the caller may try again."""
    record, age = read_record(path), _age(path)
    if age is None:
        return True  # released meanwhile
    if not _dead(record, age, lease):
        return False
    aside = path.with_name(f".{path.name}.{secrets.token_hex(6)}.expired")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # another taker moved it first
    moved = read_record(aside)
    if record is not None and moved is not None and moved.get("token") != record.get("token"):
        # Between the read and the rename a new owner claimed it: give it back, unless yet another
        # claim stands there now (that owner finds its claim lost and does not write).
        try:
            os.link(aside, path)
        except OSError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def _age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def read_record(path: Path) -> dict | None:
    """A JSON object read from `path`; None when it is missing, unreadable or not an object."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class Heartbeat:
    """Touches the claims it holds every `interval` seconds from a daemon thread, until closed."""

    def __init__(self, claims: list[Claim], interval: float):
        self.claims = claims
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True, name="gatys-claims")
        self._thread.start()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for claim in self.claims:
                claim.touch()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> "Heartbeat":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
