"""Files liftshift writes beside the plan (reports, expectation suites): UTF-8, and one clear error."""

from pathlib import Path

from liftshift.errors import WriteError


def write_text(path: Path, text: str) -> None:
    """Write a file, making its folder; one liftshift may not write raises WriteError saying so."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Explicit UTF-8: names and values may be non-ASCII and the locale's default may not be.
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise WriteError(
            f"cannot write {path}: {exc.strerror or exc}; make {path.parent} writable for this user, "
            "or keep the plan in a folder that is"
        ) from None
