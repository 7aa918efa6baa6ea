"""Files the CLI reads and writes for the user: ``--data @FILE`` and ``--output FILE``.

Reads are bounded and take regular files only: a FIFO would block forever and ``/dev/zero``
never ends. Writes go to a temporary file beside the target, renamed over it once complete, so
a failed export never leaves half a file behind; either failure names the path.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import typer

from opcatflow.engine.limits import DATA

# --data @FILE or @- is instance data, so it is bounded by the same limit, in bytes
DATA_FILE_LIMIT = DATA.maximum

T = TypeVar("T")

_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _too_large(what: str, option: str) -> typer.BadParameter:
    return typer.BadParameter(
        f"{what} is over the limit of 1 MiB ({DATA_FILE_LIMIT} bytes)", param_hint=option
    )


def _decode(raw: bytes, what: str, option: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise typer.BadParameter(
            f"{what} is not valid UTF-8 (byte {err.start})", param_hint=option
        ) from None


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0 and (chunk := os.read(fd, min(size, 1 << 16))):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_data_source(source: str, option: str = "--data") -> str:
    """The text of ``@source``: ``-`` for standard input, else a regular file; at most
    :data:`DATA_FILE_LIMIT` bytes of UTF-8 either way.

    Raises:
        typer.BadParameter: unreadable, not a regular file, too large, or not UTF-8 (exit 2).
    """
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is not None:
            raw = stream.read(DATA_FILE_LIMIT + 1)
        else:  # a text stream with no bytes underneath (an embedding application's)
            raw = sys.stdin.read(DATA_FILE_LIMIT + 1).encode("utf-8", "surrogatepass")
        if len(raw) > DATA_FILE_LIMIT:
            raise _too_large("standard input", option)
        return _decode(raw, "standard input", option)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise typer.BadParameter(
            f"cannot read {source}: {err.strerror}", param_hint=option
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise typer.BadParameter(
                f"{source} is {kind}; give a regular file (at most 1 MiB) or @- for standard input",
                param_hint=option,
            )
        raw = _read_at_most(fd, DATA_FILE_LIMIT + 1)  # the file may have grown since fstat
    finally:
        os.close(fd)
    if len(raw) > DATA_FILE_LIMIT:
        raise _too_large(source, option)
    return _decode(raw, source, option)


def _cannot_write(path: Path, option: str, err: OSError) -> typer.BadParameter:
    if not path.parent.is_dir():
        reason = f"the folder {path.parent} does not exist"
    else:
        reason = err.strerror or type(err).__name__
    return typer.BadParameter(f"cannot write {path}: {reason}", param_hint=option)


@contextmanager
def _replacing(path: Path) -> Iterator[IO[bytes]]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if path.is_file():  # keep who may read it; a new file is the owner's alone (0600)
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_output(path: Path, option: str, write: Callable[[IO[str]], T]) -> T:
    """:func:`write_output` for text (UTF-8)."""

    def wrapped(raw: IO[bytes]) -> T:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        try:
            return write(text)
        finally:
            text.detach()  # flushes; the file itself is closed by write_output

    return write_output(path, option, wrapped)


def write_output(path: Path, option: str, write: Callable[[IO[bytes]], T]) -> T:
    """Call ``write`` with a binary file that becomes ``path`` when it returns. A regular
    file (or a new one) is replaced whole, never left half written; a device or FIFO that
    exists (``/dev/stdout``) is written in place.

    Raises:
        typer.BadParameter: ``path`` cannot be written, naming it and why (exit 2).
    """
    try:
        special = path.exists() and not path.is_file()
        if special and path.is_dir():
            raise typer.BadParameter(f"cannot write {path}: it is a folder", param_hint=option)
        if special:
            with path.open("wb") as fh:
                return write(fh)
        with _replacing(path) as fh:
            return write(fh)
    except OSError as err:
        raise _cannot_write(path, option, err) from None
