"""A tiny YAML emitter for the rule files: dicts, lists, strings, numbers, booleans.

PyYAML is not a dependency of the project, and the rule files only need block mappings,
block sequences, single-quoted scalars and literal blocks (`|-`) for multi-line PromQL.
The output is plain YAML 1.1/1.2 that Prometheus, promtool and any YAML library read.
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*\Z")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def dump(obj: object) -> str:
    """Render `obj` (a dict at the top) as a YAML document ending in a newline."""
    return "\n".join(_lines(obj, 0)) + "\n"


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if "\n" in value:
            raise ValueError("multi-line strings are emitted as blocks, not scalars")
        if _PLAIN.match(value) and value.lower() not in _RESERVED:
            return value
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot emit {type(value).__name__} as YAML")


def _block(value: str, indent: int) -> list[str]:
    lines = value.rstrip("\n").split("\n")
    if lines[0].startswith(" ") or any(line != line.rstrip() for line in lines):
        raise ValueError(f"block text must not start with or end lines in spaces: {value!r}")
    pad = " " * indent
    return [pad + line if line else "" for line in lines]


def _lines(obj: object, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            key_text = _scalar(str(key))
            if isinstance(value, str) and "\n" in value:
                out.append(f"{pad}{key_text}: |-")
                out.extend(_block(value, indent + 2))
            elif isinstance(value, dict | list) and value:
                out.append(f"{pad}{key_text}:")
                child_indent = indent + 2
                out.extend(_lines(value, child_indent))
            elif isinstance(value, dict):
                out.append(f"{pad}{key_text}: {{}}")
            elif isinstance(value, list):
                out.append(f"{pad}{key_text}: []")
            else:
                out.append(f"{pad}{key_text}: {_scalar(value)}")
        return out
    if isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict | list) and item:
                inner = _lines(item, indent + 2)
                inner[0] = f"{pad}- " + inner[0][indent + 2 :]
                out.extend(inner)
            elif isinstance(item, str) and "\n" in item:
                out.append(f"{pad}- |-")
                out.extend(_block(item, indent + 2))
            else:
                out.append(f"{pad}- {_scalar(item)}")
        return out
    return [pad + _scalar(obj)]
