"""Frontdesk: a local-first customer-support desk."""
__version__ = "0.1.0"
