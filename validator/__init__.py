"""The bank: a Flask app around the TChain core, and the operator's commands."""

from validator.app import create_app
from validator.config import BankConfig, init_bank
from validator.errors import ValidatorError

__all__ = ["BankConfig", "ValidatorError", "create_app", "init_bank"]
