"""The workbench's HTML: Jinja templates and static files (package data), and `render`."""
