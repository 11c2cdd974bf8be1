"""Turn class names and sample ids into safe single path components.

A label such as `../x`, `a/b`, `.` or `` must never become a path outside the output
folder; the original name is kept in the manifest, only the folder name is sanitised.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_COMPONENT = 80
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_component(name: str, fallback: str = "unnamed") -> str:
    """One path component made of `name`: no separators, control characters, leading dots or empties."""
    s = unicodedata.normalize("NFC", str(name))
    s = _UNSAFE.sub("_", s).strip().strip(".").strip()
    if not s:
        s = fallback
    if s.upper() in _RESERVED:
        s = f"_{s}"
    if len(s.encode("utf-8")) > MAX_COMPONENT:
        digest = hashlib.sha1(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:8]
        s = s.encode("utf-8")[: MAX_COMPONENT - 9].decode("utf-8", "ignore") + "-" + digest
    return s


def class_dirs(class_names: list[str]) -> list[str]:
    """A unique safe folder name per class, in class order; clashes get a numeric suffix, and so does a
    class named like images/metadata.csv, the file beside the class folders."""
    dirs: list[str] = []
    taken: set[str] = {"metadata.csv"}
    for i, name in enumerate(class_names):
        base = safe_component(name, fallback=f"class_{i}")
        d, n = base, 2
        while d.lower() in taken:  # case-insensitive, for filesystems that fold case
            d = f"{base}-{n}"
            n += 1
        taken.add(d.lower())
        dirs.append(d)
    return dirs
