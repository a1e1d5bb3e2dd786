"""Only the optional C accelerator of exact accounting lives here; everything else about the
package is in pyproject.toml. `optional=True`: without a C compiler the install still succeeds
and exact accounting runs its pure-Python loop (introspect/agent/exact.py)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("introspect.agent._exact_accel",
                             sources=["introspect/agent/_exact_accel.c"],
                             extra_compile_args=["-O2"], optional=True)])
