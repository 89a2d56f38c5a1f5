"""What repair found: each damaged or missing file (:class:`Finding`), and the one place
that repairs it, or says the operator must (:class:`Findings`)."""

from __future__ import annotations

import dataclasses
import os

from ..errors import SargeError
from ..files import read_text


@dataclasses.dataclass
class Finding:
    """One damaged or missing file: what is wrong, and what repair does (or the operator
    must do, when ``manual``)."""

    path: str
    problem: str
    action: str
    manual: bool = False
    repaired: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Findings:
    """The findings of one run on ``home``: :meth:`fix` repairs (unless ``dry_run``) and
    logs the action, :meth:`manual` leaves the file to the operator."""

    def __init__(self, home, dry_run: bool):
        self.home = home
        self.dry_run = dry_run
        self.all = []

    def fix(self, path, problem, action, fix) -> None:
        finding = Finding(path, problem, action)
        if not self.dry_run:
            fix()
            finding.repaired = True
            self.home.log_action("repair", f"{os.path.relpath(path, self.home.path)}: {action}")
        self.all.append(finding)

    def manual(self, path, problem, action) -> None:
        self.all.append(Finding(path, problem, action, manual=True))


def read(path):
    """(text or None, problem or None): a file that is not UTF-8 is damaged, not fatal."""
    try:
        return read_text(path), None
    except SargeError:
        return None, "damaged (not UTF-8 text)"
