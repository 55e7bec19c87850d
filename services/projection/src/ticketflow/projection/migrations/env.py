"""Alembic's entry point for the read model's migrations (run through ``ticketflow.storage``)."""

from ticketflow.storage.alembic_env import run

run()
