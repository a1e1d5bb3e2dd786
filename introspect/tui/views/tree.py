"""4 Tree: who belongs under whom, collapsible, with task counts per subtree.

A task sits under the task that awaits it (plain `await`, gather or TaskGroup: the await
graph, when the source can give it) or else under the task that created it. Siblings of one
kind are grouped ("session ×500"); a group fills in when it is expanded, so 500 identical
children take one row until someone asks to see them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.protocol.snapshot import TaskRow
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.widgets.text import safe, tail

MAX_TREE_TASKS = 1000  # one page from the agent; the status line says when there are more
GROUP_AT = 2  # siblings of one kind (and link) this many or more share one expandable row
SPAWNED = ""  # placed under its creator, not under a task that awaits it


class Placement:
    """Each task's place: its parent (None: a root) and the link to it, children in id order,
    and subtree sizes. Await cycles, and a child that awaits its own creator, never loop: a
    task no root reaches becomes a root."""

    def __init__(self, rows: list[TaskRow], edges: list[m.AwaitEdge] | None = None) -> None:
        self.rows = {r.id: r for r in rows}
        awaiter: dict[int, tuple[int, str]] = {}
        for edge in edges or ():
            if edge.awaited in self.rows and edge.waiter in self.rows:
                awaiter.setdefault(edge.awaited, (edge.waiter, edge.via))
        self.via: dict[int, str] = {}
        parent: dict[int, int | None] = {}
        for r in rows:
            if r.id in awaiter:
                parent[r.id], self.via[r.id] = awaiter[r.id]
            else:
                parent[r.id] = r.parent if r.parent in self.rows else None
                self.via[r.id] = SPAWNED
        self.children: dict[int | None, list[int]] = {}
        for r in rows:
            self.children.setdefault(parent[r.id], []).append(r.id)
        self.roots = list(self.children.get(None, []))
        order = self._walk(self.roots)
        reached = set(order)
        for r in rows:  # unreached: in a cycle; the oldest of it becomes a root
            if r.id not in reached:
                self.children[parent[r.id]].remove(r.id)
                self.roots.append(r.id)
                self.children.setdefault(None, []).append(r.id)
                self.via[r.id] = SPAWNED
                more = self._walk([r.id], reached)
                order.extend(more)
                reached.update(more)
        self.sizes: dict[int, int] = {}
        for task in reversed(order):
            self.sizes[task] = 1 + sum(self.sizes[c] for c in self.children.get(task, ()))

    def _walk(self, starts: list[int], seen: set[int] | None = None) -> list[int]:
        seen = set(seen or ())
        order: list[int] = []
        stack = list(starts)
        while stack:
            task = stack.pop()
            if task in seen:
                continue
            seen.add(task)
            order.append(task)
            stack.extend(self.children.get(task, ()))
        return order

    def groups(self, parent: int | None) -> list[tuple[str, str, list[int]]]:
        """The children of `parent` as (kind, via, ids), in order of first appearance."""
        out: dict[tuple[str, str], list[int]] = {}
        for task in self.children.get(parent, ()):
            out.setdefault((self.rows[task].kind, self.via[task]), []).append(task)
        return [(kind, via, ids) for (kind, via), ids in out.items()]


class TreeView(View):
    BINDINGS = [Binding("r", "reload", "Reload")]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.collapsed: set[int] = set()
        self.opened_groups: set[tuple[int | None, str, str]] = set()
        self.placement: Placement | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="tree-status", classes="status")
        tree: Tree[Any] = Tree("tasks", id="task-tree")
        tree.show_root = False
        yield tree

    def show(self, model: ObserverState) -> None:
        self.action_reload()

    @work(exclusive=True, group="task-tree", exit_on_error=False)
    async def action_reload(self) -> None:
        if self.source is None:
            return
        try:
            # The oldest tasks (creation order is id order: O(page) on the agent) and the
            # await edges among them, in one request bounded by the page.
            page = await self.source.tasks(m.TaskListRequest(
                limit=MAX_TREE_TASKS, sort="age", descending=True, graph=True))
            edges = page.graph if page.graph is not None else await self._await_edges()
        except UserError as exc:
            if not self.is_attached:
                return
            self.query_one("#tree-status", Static).update(Text(f"tree: {exc}"))
            return
        if self.is_attached:
            self._build(page, edges)

    async def _await_edges(self) -> list[m.AwaitEdge] | None:
        """The await graph of an agent older than `TaskPage.graph` (its dump, without task
        chains); None from a source that has none (a recording)."""
        dump = getattr(self.source, "dump", None)
        if dump is None:
            return None
        try:
            reply = await dump(max_tasks=0)
        except UserError:  # the tree by creator is still worth showing
            return None
        return list(reply.graph)

    def _build(self, page: m.TaskPage, edges: list[m.AwaitEdge] | None) -> None:
        tree = self.query_one("#task-tree", Tree)
        # Siblings in id order, whatever order the page came in.
        self.placement = placed = Placement(sorted(page.tasks, key=lambda r: r.id), edges)
        cursor = tree.cursor_line
        tree.clear()
        self._fill(tree.root, None)
        tree.root.expand()
        if cursor >= 0:
            tree.cursor_line = min(cursor, max(0, tree.last_line))
        shown = len(page.tasks)
        status = f"{page.total} live tasks, {len(placed.roots)} roots"
        if edges is None:
            status += " (by creator: this source has no await graph)"
        else:
            status += " (under who awaits them, else their creator)"
        if shown < page.total:
            status += f"; tree of the oldest {shown}"
        self.query_one("#tree-status", Static).update(Text(status))

    def _fill(self, node: TreeNode[Any], parent: int | None) -> None:
        """Add `parent`'s children under `node`, and their subtrees, without recursion."""
        placed = self.placement
        assert placed is not None
        todo: list[tuple[TreeNode[Any], int | None]] = [(node, parent)]
        while todo:
            at, owner = todo.pop()
            for kind, via, ids in placed.groups(owner):
                if len(ids) >= GROUP_AT:
                    key = (owner, kind, via)
                    group = at.add(self._group_label(kind, via, ids), data=key,
                                   allow_expand=True)
                    if key in self.opened_groups:
                        todo.extend(self._add_tasks(group, ids))
                        group.expand()
                else:
                    todo.extend(self._add_tasks(at, ids))

    def _add_tasks(self, at: TreeNode[Any], ids: list[int]
                   ) -> list[tuple[TreeNode[Any], int | None]]:
        placed = self.placement
        assert placed is not None
        more: list[tuple[TreeNode[Any], int | None]] = []
        for task in ids:
            row = placed.rows[task]
            label = safe(row.name, 32, style="bold")
            label.append(" ")
            label.append_text(tail(row.kind, 40))
            label.append(f"  {row.state}", style="italic")
            if placed.via[task]:
                label.append(f"  awaited via {placed.via[task]}", style="dim")
            if placed.children.get(task):
                label.append(f"  [{placed.sizes[task]} tasks]")
                node = at.add(label, data=task, expand=task not in self.collapsed)
                more.append((node, task))
            else:
                at.add_leaf(label, data=task)
        return more

    def _group_label(self, kind: str, via: str, ids: list[int]) -> Text:
        placed = self.placement
        assert placed is not None
        label = tail(kind, 40)
        label.stylize("bold")
        label.append(f" ×{len(ids)}", style="bold")
        states = Counter(placed.rows[i].state for i in ids)
        label.append("  " + ", ".join(f"{n} {state}" for state, n in states.most_common()),
                     style="italic")
        if via:
            label.append(f"  awaited via {via}", style="dim")
        size = sum(placed.sizes[i] for i in ids)
        if size > len(ids):
            label.append(f"  [{size} tasks]")
        return label

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed) -> None:
        data = event.node.data
        if isinstance(data, tuple):
            self.opened_groups.discard(data)
        elif data is not None:
            self.collapsed.add(data)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        data = event.node.data
        if isinstance(data, tuple):  # a group: its tasks are added the first time it opens
            self.opened_groups.add(data)
            if not event.node.children and self.placement is not None:
                opened = self._add_tasks(event.node, self._group_ids(data))
                for node, task in opened:
                    self._fill(node, task)
        elif data is not None:
            self.collapsed.discard(data)

    def _group_ids(self, key: tuple[int | None, str, str]) -> list[int]:
        placed = self.placement
        assert placed is not None
        owner, kind, via = key
        for group_kind, group_via, ids in placed.groups(owner):
            if (group_kind, group_via) == (kind, via):
                return ids
        return []
