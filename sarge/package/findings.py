"""What ``sarge validate`` finds: each problem a :class:`Finding` (its file, its line, what
is wrong and what to do, how bad), and a source deployable when none is an error."""

from __future__ import annotations

import dataclasses

ERROR = "error"
WARNING = "warning"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem of a source: ``file`` (relative to the source's root; None for the
    source as a whole), ``line`` (1 up; None for the whole file), ``message`` (what is
    wrong and what to do), ``severity`` (:data:`ERROR` or :data:`WARNING`)."""

    file: str | None
    line: int | None
    message: str
    severity: str = ERROR

    @property
    def error(self) -> bool:
        return self.severity == ERROR

    def where(self) -> str:
        """``FILE:LINE``, ``FILE`` or ``.`` (the source)."""
        if self.file is None:
            return "."
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where()}: {self.severity}: {self.message}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def error(file, line, message) -> Finding:
    return Finding(file, line, message, ERROR)


def warning(file, line, message) -> Finding:
    return Finding(file, line, message, WARNING)


def ordered(findings) -> list:
    """The findings by file, line (the source's own first), then message."""
    return sorted(findings, key=lambda f: (f.file is not None, f.file or "", f.line or 0,
                                           f.message))


def deployable(findings) -> bool:
    """True when none of ``findings`` is an error."""
    return not any(f.error for f in findings)
