"""The app's functions, indexed once per test process (`get_functions()` refuses a second call)."""

from __future__ import annotations

import functools
from typing import Any

import function_app


@functools.cache
def functions() -> dict[str, Any]:
    """Function name -> the `Function` the worker would register."""
    return {f.get_function_name(): f for f in function_app.app.get_functions()}
