from ticketflow.storage.alembic_env import run

run()
