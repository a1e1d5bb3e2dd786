"""Only the optional C accelerator of exact accounting lives here; everything else about the
package is in pyproject.toml. Optional: without a C compiler the install still succeeds and exact
accounting runs its pure-Python loop (introspect/agent/exact.py); `make setup` says so loudly.
INTROSPECT_REQUIRE_ACCEL=1 makes a failed build fail the install, with the compiler's message
(CI and the cross-version runs)."""

import os

from setuptools import Extension, setup

required = os.environ.get("INTROSPECT_REQUIRE_ACCEL", "") not in ("", "0")
setup(ext_modules=[Extension("introspect.agent._exact_accel",
                             sources=["introspect/agent/_exact_accel.c"],
                             extra_compile_args=["-O2"], optional=not required)])
