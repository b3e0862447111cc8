"""The CLI's errors: each becomes one plain line on stderr and exit 1."""

from tchain.errors import TChainError

__all__ = ["BankError", "CliError", "SecurityError", "WalletError"]


class CliError(TChainError):
    """Root of the errors the CLI raises itself."""

    code = "cli_error"
    status = 1


class WalletError(CliError):
    """The wallet file is missing, damaged, or the passphrase is wrong."""


class BankError(CliError):
    """The bank refused a request (carries its code and message) or could not be reached."""


class SecurityError(CliError):
    """The bank served something that contradicts what this wallet already verified."""
