"""Started by `introspect run`: this directory is put first on PYTHONPATH, so Python imports
this module at startup, before the program's own code. It chains to any other
`sitecustomize` further on the path, then starts the agent."""

import os
import sys


def _chain_other_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    saved = list(sys.path)
    this = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        import importlib

        try:
            importlib.import_module("sitecustomize")
        except ImportError:
            pass
    finally:
        sys.path[:] = saved
        if this is not None:
            sys.modules["sitecustomize"] = this


def _is_helper_process() -> bool:
    """multiprocessing's resource tracker (and the like): no app code, no agent."""
    argv = getattr(sys, "orig_argv", None) or sys.argv
    return any("multiprocessing.resource_tracker" in arg or "multiprocessing.semaphore_tracker"
               in arg for arg in argv)


def _is_command_root() -> bool:
    """The process `introspect run` became (exec keeps the pid); children are not."""
    return os.environ.get("INTROSPECT_ROOT_PID") in (None, "", str(os.getpid()))


def _start_agent() -> None:
    if os.environ.get("INTROSPECT_BOOTSTRAP") != "1" or _is_helper_process():
        return
    try:
        try:
            import introspect
        except ImportError:
            # Another interpreter than introspect's own: borrow introspect's site directory,
            # last on the path so the program's own packages win, when the versions match.
            fallback = os.environ.get("INTROSPECT_SITE", "")
            wanted = os.environ.get("INTROSPECT_PYTHON_VERSION", "")
            if not fallback or wanted != "{}.{}".format(*sys.version_info[:2]):
                raise
            sys.path.extend(p for p in fallback.split(os.pathsep) if p not in sys.path)
            import introspect
        from introspect.errors import UserError
    except ImportError as exc:
        sys.stderr.write(f"introspect: agent not started: this Python ({sys.executable}) "
                         f"cannot import introspect ({exc})\n")
        return
    try:
        introspect.start()
    except UserError as exc:
        if not _is_command_root():  # a worker of the server: it runs on, without an agent
            sys.stderr.write(f"introspect: agent not started in process {os.getpid()}: {exc}\n")
            return
        sys.stderr.write(f"introspect: error: {exc}\n")
        sys.stderr.flush()
        os._exit(exc.exit_code)
    except Exception as exc:  # the program runs anyway
        sys.stderr.write(f"introspect: agent not started: {exc!r}\n")


_chain_other_sitecustomize()
_start_agent()
