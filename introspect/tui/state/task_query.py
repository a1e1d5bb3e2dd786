"""Task-list queries answered locally, for a replay (live, the agent pages and filters).
Same semantics as the agent's TaskListRequest, applied to the rows a snapshot carries."""

from __future__ import annotations

from introspect.protocol import messages as m
from introspect.protocol.snapshot import TaskRow

SORT_KEYS = {
    "id": lambda r: r.id,
    "name": lambda r: r.name,
    "kind": lambda r: r.kind,
    "state": lambda r: r.state,
    "age": lambda r: r.age_seconds,
    "location": lambda r: r.location,
    "busy": lambda r: r.busy_seconds,
    "held": lambda r: r.held_seconds,
}


def matches(row: TaskRow, req: m.TaskListRequest) -> bool:
    if req.kind is not None and row.kind != req.kind:
        return False
    if req.state is not None and row.state != req.state:
        return False
    if req.name is not None and req.name.lower() not in row.name.lower():
        return False
    if req.location is not None and req.location.lower() not in row.location.lower():
        return False
    if req.min_age is not None and row.age_seconds < req.min_age:
        return False
    if req.text is not None:
        needle = req.text.lower()
        return any(needle in f.lower() for f in (row.name, row.kind, row.location))
    return True


def page_locally(rows: list[TaskRow], total: int, req: m.TaskListRequest) -> m.TaskPage:
    selected = [r for r in rows if matches(r, req)]
    selected.sort(key=SORT_KEYS.get(req.sort, SORT_KEYS["age"]), reverse=req.descending)
    return m.TaskPage(total=total, matched=len(selected), offset=req.offset,
                      tasks=selected[req.offset:req.offset + req.limit])
