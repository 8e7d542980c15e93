"""The command line: `frontdesk [tui] | ingest | search | ask | route | logs | handoff | config | models`.

Each command reaches the core only through its public face (`app.core`) and formats what it
returns; `common` holds what the commands share.
"""
from app.cli.main import main

__all__ = ["main"]
