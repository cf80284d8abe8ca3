"""The reference events sibling: its own tables, migrations, demo data, pages and JSON API,
mounted in the standalone process in place of the separate events service."""
