"""Errors meant for the user: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations


class UserError(Exception):
    """A mistake or an environment problem the user can fix; never shown as a traceback."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConnectError(UserError):
    """The target could not be reached (dead socket, no agent, refused)."""

    exit_code = 3


class AuthError(UserError):
    """The agent refused the credentials or the role."""

    exit_code = 4
