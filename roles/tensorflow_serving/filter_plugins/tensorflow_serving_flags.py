"""Filter that turns tensorflow_serving_extra_flags into the server's --flag=value arguments."""

from __future__ import annotations

from typing import Any


def tensorflow_serving_flag_args(flags: dict[str, Any]) -> list[str]:
    """`{name: value}` -> `["--name=value", ...]`, sorted, booleans as true/false.

    TensorFlow's flag parser accepts only `=true`/`=false`; YAML's `true` would otherwise render as
    Python's `True`, which makes the server refuse to start.
    """
    args = []
    for name, value in sorted(flags.items()):
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args.append(f"--{str(name).lstrip('-')}={text}")
    return args


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"tensorflow_serving_flag_args": tensorflow_serving_flag_args}
