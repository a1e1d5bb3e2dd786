"""Only the optional C accelerators live here (exact accounting; the per-task path of task
counting; the blocking watchdog's clock and wait); everything else about the package is in
pyproject.toml. Optional: without a C compiler the install still succeeds and each runs its
pure-Python path (introspect/agent/exact.py, introspect/agent/collectors/tasks.py,
introspect/agent/blocking.py); `make setup` says so loudly.
INTROSPECT_REQUIRE_ACCEL=1 makes a failed build fail the install, with the compiler's message
(CI and the cross-version runs)."""

import os

from setuptools import Extension, setup

required = os.environ.get("INTROSPECT_REQUIRE_ACCEL", "") not in ("", "0")
setup(ext_modules=[Extension(f"introspect.agent.{name}", sources=[f"introspect/agent/{name}.c"],
                             extra_compile_args=["-O2"], optional=not required)
                   for name in ("_exact_accel", "_tasks_accel", "_watchdog_accel", "_gc_accel")])
