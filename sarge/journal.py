"""The deploy history: an append-only journal of JSON lines, one record per change.

``var/log/history.jsonl`` holds one JSON object a line: what changed which app,
when, who did it, what came of it. Each record carries ``seq`` (1, 2, ...) and
``prev``, the SHA-256 of the line before it (of nothing, for the first), so that
an edited, removed or reordered line shows: :meth:`Journal.verify` recomputes the
chain. It is a tamper-evident log, not a tamper-proof one (whoever can write the
file can write a new chain); what it gives is that a line changed by hand, or by a
torn write, is found. Appends hold a lock and are one ``write`` with ``O_APPEND``.

Besides, what identifies a source: :func:`source_identity` (an archive's SHA-256,
a folder's git revision read from ``.git`` without running git, and a digest of
its files), and :func:`who` (the user, the one sudo says, the SSH client).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import stat

from .errors import SettingsError
from .files import locked

#: The ``prev`` of the first record: the SHA-256 of nothing.
GENESIS = hashlib.sha256(b"").hexdigest()
#: A folder source with more files or bytes than this is not digested (named so).
MAX_DIGEST_FILES = 20_000
MAX_DIGEST_BYTES = 512 * 1024 * 1024
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Journal:
    """The journal at ``path`` (``var/log/history.jsonl``), appended under the lock at
    ``lock_path``; ``clock()`` gives the time of a record (an ISO 8601 string)."""

    def __init__(self, path: str, lock_path: str, clock):
        self.path = path
        self.lock_path = lock_path
        self.clock = clock

    def append(self, record: dict) -> dict:
        """Add ``record`` (JSON-serialisable) with its ``seq``, ``time`` and ``prev``;
        return it as written."""
        with locked(self.lock_path):
            last = self._last_line()
            seq = 1
            if last is not None:
                try:
                    seq = int(json.loads(last)["seq"]) + 1
                except (ValueError, KeyError, TypeError):
                    seq = sum(1 for _ in self._lines()) + 1  # a damaged last line
            record = {**record, "seq": seq, "time": record.get("time") or self.clock(),
                      "prev": _digest(last)}
            line = json.dumps(record, sort_keys=True, ensure_ascii=False,
                              separators=(",", ":"))
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o640)
            try:
                data = (line + "\n").encode("utf-8")
                end = os.lseek(fd, 0, os.SEEK_END)
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    data = b"\n" + data  # a torn last line stays one bad line, alone
                view = memoryview(data)
                while view:  # a short write (a full disk) is finished or raises
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    def records(self) -> list:
        """Every record, oldest first; a line that is not a JSON object is skipped
        (:meth:`verify` names it)."""
        found = []
        for _, line in self._lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found

    def verify(self) -> list:
        """What breaks the chain, as one line each (none: every line is as appended)."""
        problems, prev, seq = [], None, 0
        for number, line in self._lines():
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError:
                problems.append(f"line {number}: not a JSON record")
                prev = line
                continue
            if record.get("prev") != _digest(prev):
                problems.append(f"line {number} (seq {record.get('seq')}): the line before "
                                "it was changed, removed or put there by hand")
            if record.get("seq") != seq + 1:
                problems.append(f"line {number}: seq {record.get('seq')} follows {seq}")
            seq = record.get("seq") if isinstance(record.get("seq"), int) else seq + 1
            prev = line
        return problems

    def _lines(self):
        """(line number, text without its newline) of each line of the file."""
        try:
            with open(self.path, "rb") as f:
                for number, raw in enumerate(f, 1):
                    text = raw.decode("utf-8", "replace").rstrip("\n")
                    if text:
                        yield number, text
        except FileNotFoundError:
            return

    def _last_line(self):
        """The file's last line (without its newline), or None when it has none; read from
        the end, so that a long history costs nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            chunk, data = 8192, b""
            while end > 0 and data.count(b"\n") < 2:
                start = max(0, end - chunk)
                data = os.pread(fd, end - start, start) + data
                end = start
        finally:
            os.close(fd)
        lines = [line for line in data.split(b"\n") if line]
        return lines[-1].decode("utf-8", "replace") if lines else None


def _digest(line) -> str:
    return GENESIS if line is None else hashlib.sha256(line.encode("utf-8")).hexdigest()


def who(environ=os.environ, uid=None) -> dict:
    """Who runs this command: the user, the one sudo ran it for, the SSH client's address
    (``None`` for what is not known)."""
    uid = os.getuid() if uid is None else uid
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    client = (environ.get("SSH_CLIENT") or environ.get("SSH_CONNECTION") or "").split()
    return {"user": user, "sudo_user": environ.get("SUDO_USER") or None,
            "client": client[0] if client else None}


def source_identity(path: str) -> dict:
    """What identifies the source at ``path``: ``{"sha256": ...}`` of an archive; of a
    folder, ``{"git": revision or None, "tree_sha256": digest or None, "note": ...}``."""
    if not os.path.isdir(path):
        try:
            return {"sha256": _file_sha256(path)}
        except OSError as exc:
            return {"sha256": None, "note": f"cannot read it: {exc.strerror}"}
    identity = {"git": git_revision(path), "tree_sha256": None}
    try:
        identity["tree_sha256"] = tree_digest(path)
    except (OSError, SettingsError) as exc:
        identity["note"] = str(exc) if isinstance(exc, SettingsError) else exc.strerror
    return identity


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    fd = os.open(path, _READ)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def tree_digest(folder: str) -> str:
    """A SHA-256 over the folder's files: each one's path, kind (file, executable, link,
    folder) and content (a link: its target), in sorted order; links are not followed.
    :class:`SettingsError` past :data:`MAX_DIGEST_FILES` or :data:`MAX_DIGEST_BYTES`."""
    h = hashlib.sha256()
    files = size = 0
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            st = os.lstat(path)
            files += 1
            size += st.st_size
            if files > MAX_DIGEST_FILES or size > MAX_DIGEST_BYTES:
                raise SettingsError(f"too large to digest (over {MAX_DIGEST_FILES} files or "
                                    f"{MAX_DIGEST_BYTES >> 20} MiB)")
            if stat.S_ISLNK(st.st_mode):
                h.update(f"L {rel}\0{os.readlink(path)}\0".encode("utf-8", "surrogateescape"))
            elif stat.S_ISREG(st.st_mode):
                kind = "X" if st.st_mode & 0o111 else "F"
                h.update(f"{kind} {rel}\0".encode("utf-8", "surrogateescape"))
                h.update(bytes.fromhex(_file_sha256(path)))
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for d in dirs:
            h.update(f"D {os.path.relpath(os.path.join(root, d), folder)}\0".encode(
                "utf-8", "surrogateescape"))
    return h.hexdigest()


def git_revision(folder: str):
    """The commit the git checkout in ``folder`` is at, read from ``.git`` (HEAD, its ref,
    or packed-refs) without running git (which would read the folder's own git config);
    None when it is no checkout or the files do not say."""
    git = os.path.join(folder, ".git")
    head = _small_text(os.path.join(git, "HEAD"))
    if head is None:
        return None
    if not head.startswith("ref: "):
        return head if _is_sha(head) else None
    ref = head[5:].strip()
    if ".." in ref.split("/") or not ref.startswith("refs/"):
        return None
    found = _small_text(os.path.join(git, *ref.split("/")))
    if found and _is_sha(found):
        return found
    for line in (_small_text(os.path.join(git, "packed-refs"), 1 << 20) or "").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and _is_sha(sha):
            return sha
    return None


def _small_text(path, limit=4096):
    try:
        fd = os.open(path, _READ)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


def _is_sha(text) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)
