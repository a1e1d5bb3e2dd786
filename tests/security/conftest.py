"""A second, unprivileged user for the cross-user tests, created for the session (as root, as
CI runs) and removed afterwards."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def other_user() -> Iterator[pwd.struct_passwd]:
    if os.geteuid() != 0:
        pytest.fail("tests/security needs root to create a second user (useradd); run the "
                    "suite as root, as CI does")
    name = f"introspect-t{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, text=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
