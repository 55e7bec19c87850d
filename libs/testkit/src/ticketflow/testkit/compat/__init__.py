"""Compatibility tooling, used only by the compat tests and ``scripts/update_schemas.py`` (so it is
kept out of the runtime wheels): payload schema snapshots (``schemas``) and boundary names
(``names``). Rules and how to change a boundary: docs/compatibility.md."""
