"""Errors a user can act on.

Every domain error carries a one-line title and a fix. Front ends print `str(error)`
(title, then the fix) and never a traceback for these.
"""
from __future__ import annotations


class FrontdeskError(Exception):
    def __init__(self, title: str, fix: str = ""):
        super().__init__(title)
        self.title = title
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.title}\n  {self.fix}" if self.fix else self.title


class ConfigError(FrontdeskError):
    pass


class DocsFolderError(FrontdeskError):
    pass


class StoreError(FrontdeskError):
    pass


class ModelError(FrontdeskError):
    pass


class ProviderError(FrontdeskError):
    """A model call failed. `retryable` tells the pipeline whether trying again may help.

    `sent` is False when the request certainly never reached the provider (no key, the
    connection was refused), so the ledger does not record passages as having left.
    """

    def __init__(self, title: str, fix: str = "", retryable: bool = False, sent: bool = True):
        super().__init__(title, fix)
        self.retryable = retryable
        self.sent = sent


class LedgerError(FrontdeskError):
    pass
