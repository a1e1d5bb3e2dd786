"""Stack dumps and CPU profiles of local processes through py-spy (no agent needed)."""

from introspect.profiling.pyspy import DumpResult, Frame, ThreadStack, dump, dump_text, record
from introspect.profiling.report import FunctionStat, ProfileReport, load_speedscope, render_top
from introspect.profiling.target import resolve_pid

__all__ = [
    "DumpResult",
    "Frame",
    "FunctionStat",
    "ProfileReport",
    "ThreadStack",
    "dump",
    "dump_text",
    "load_speedscope",
    "record",
    "render_top",
    "resolve_pid",
]
