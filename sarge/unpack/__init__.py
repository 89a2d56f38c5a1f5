"""Unpacking a source (a folder or a tar archive) into an instance folder, safely.

:func:`unpack` first checks every member of the source (:func:`check_members`):
absolute paths, ``..``, links that point out of the instance (or members written
through a link), device nodes, FIFOs and sockets are refused, and so is a source
larger than the free space, before anything is written. Then it writes each
member itself, never with :func:`shutil.copytree` or ``TarFile.extractall``:

- nothing of the source is followed: each entry of a folder is opened relative to
  its folder's descriptor with ``O_NOFOLLOW | O_NONBLOCK`` and ``fstat``-ed, a link
  is read again with ``readlink``, and what is not a regular file, a folder or a
  link that passes the checks *when it is copied* is refused. A folder the app's
  user can write may change between the check and the copy;
- each file, folder and link is created anew (``O_CREAT | O_EXCL | O_NOFOLLOW``,
  in folders opened with ``O_NOFOLLOW``) by the user that unpacks, who owns it:
  the owners an archive names are never restored, whatever the Python (3.11.2, in
  Debian 12, has no extraction filters). A mode keeps its permission bits, less
  setuid, setgid, sticky, and write for group and others; mtimes are kept;
- no more bytes are written than the check measured: a file that grew since is
  refused;
- the unpacked folder is then checked again (:func:`check_tree`): every entry
  belongs to the user that unpacked it, none can be written by group or others,
  and its links stay inside.

A source whose root holds one folder and nothing else (``tar czf app.tgz app/``,
``git archive --prefix=app/``, a GitHub tarball's ``owner-repo-sha/``; a folder
with one subfolder) has that folder's content unpacked as the app: an archive's
members lose that first name as they are checked and written (a hard link's target
too; a link that pointed out of the folder points out of the instance, and is
refused), a folder source is copied from that subfolder, opened by descriptor
without following a link. One level only.

On failure the folder may hold part of the source; the deploy removes the whole
instance. This package imports only the standard library and :mod:`sarge.errors`.
"""

from __future__ import annotations

from ..errors import BuildError
from .archive import extract
from .checks import MAX_DEPTH, Member, check_members, single_folder, why
from .folder import copy
from .sources import ARCHIVE_SUFFIXES, source_kind
from .tree import check_tree

__all__ = ["ARCHIVE_SUFFIXES", "MAX_DEPTH", "Member", "check_members", "check_tree",
           "single_folder", "source_kind", "unpack"]


def unpack(source: str, target: str, *, after_check=None, exclude=()):
    """Copy or extract ``source`` into the existing folder ``target``, safely (see above).
    Returns the name of the source's one folder whose content was taken (see above), or
    None.

    ``after_check()``, when given, runs once the source is checked and before anything
    is written: the tests change the source there, as a hostile app user could.
    ``exclude``: paths of a folder source left out (a redeploy's: the instance's
    writable and persistent folders, which are its data, not its code).
    """
    if source_kind(source) == "dir":
        try:
            folder = copy(source, target, after_check, exclude)
        except OSError as exc:
            raise BuildError(f"cannot copy {source}: {why(exc)}") from exc
    else:
        folder = extract(source, target, after_check)
    check_tree(target)
    return folder
