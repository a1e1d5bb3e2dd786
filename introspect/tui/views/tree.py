"""4 Tree: the spawn tree (parent → children), collapsible, with task counts per subtree."""

from __future__ import annotations

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


def subtree_sizes(rows: list[TaskRow]) -> tuple[dict[int | None, list[TaskRow]], dict[int, int]]:
    ids = {r.id for r in rows}
    children: dict[int | None, list[TaskRow]] = {}
    for r in rows:
        parent = r.parent if r.parent in ids else None
        children.setdefault(parent, []).append(r)
    sizes: dict[int, int] = {}

    def size(row: TaskRow) -> int:  # iterative would be safer, but depth is bounded by ids
        if row.id not in sizes:
            sizes[row.id] = 1 + sum(size(c) for c in children.get(row.id, []))
        return sizes[row.id]

    for r in rows:
        size(r)
    return children, sizes


class TreeView(View):
    BINDINGS = [Binding("r", "reload", "Reload")]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.collapsed: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Static(id="tree-status", classes="status")
        tree: Tree[int] = Tree("tasks", id="task-tree")
        tree.show_root = False
        yield tree

    def show(self, model: ObserverState) -> None:
        self.action_reload()

    @work(exclusive=True, group="task-tree", exit_on_error=False)
    async def action_reload(self) -> None:
        if self.source is None:
            return
        try:
            page = await self.source.tasks(m.TaskListRequest(limit=MAX_TREE_TASKS, sort="id",
                                                             descending=False))
        except UserError as exc:
            if not self.is_attached:
                return
            self.query_one("#tree-status", Static).update(Text(f"tree: {exc}"))
            return
        if self.is_attached:
            self._build(page)

    def _build(self, page: m.TaskPage) -> None:
        tree = self.query_one("#task-tree", Tree)
        children, sizes = subtree_sizes(page.tasks)
        cursor = tree.cursor_line
        tree.clear()
        stack: list[tuple[TreeNode[int], TaskRow]] = [
            (tree.root, r) for r in reversed(children.get(None, []))]
        while stack:
            parent_node, row = stack.pop()
            label = safe(row.name, 32, style="bold")
            label.append(" ")
            label.append_text(tail(row.kind, 40))
            label.append(f"  {row.state}", style="italic")
            kids = children.get(row.id, [])
            if kids:
                label.append(f"  [{sizes[row.id]} tasks]")
                node = parent_node.add(label, data=row.id,
                                       expand=row.id not in self.collapsed)
                stack.extend((node, c) for c in reversed(kids))
            else:
                parent_node.add_leaf(label, data=row.id)
        tree.root.expand()
        if cursor >= 0:
            tree.cursor_line = min(cursor, max(0, tree.last_line))
        shown = len(page.tasks)
        status = f"{page.total} live tasks, {len(children.get(None, []))} roots"
        if shown < page.total:
            status += f" (tree of the first {shown} by id)"
        self.query_one("#tree-status", Static).update(Text(status))

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed) -> None:
        if event.node.data is not None:
            self.collapsed.add(event.node.data)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        if event.node.data is not None:
            self.collapsed.discard(event.node.data)
