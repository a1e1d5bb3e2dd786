"""Reusable widgets (tables, key bar, sparklines, header, dialogs) and the Rich-text helpers the
views share. A widget knows nothing of any one screen; the screens live in `tui/views/`."""
