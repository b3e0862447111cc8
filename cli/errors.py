"""The CLI's errors: each becomes one plain line on stderr (a JSON object under ``--json``) and
the exit code it carries: 1 refused or failed, 2 bad usage."""

from tchain.errors import TChainError

__all__ = [
    "BadUsageError",
    "BankError",
    "CliError",
    "DamagedCopyError",
    "NotDoneError",
    "SecurityError",
    "UnreachableError",
    "WalletBusyError",
    "WalletError",
]


class CliError(TChainError):
    """Root of the errors the CLI raises itself."""

    code = "cli_error"
    status = 1
    exit_code = 1


class BadUsageError(CliError):
    """What the user typed cannot mean anything (found only once the bank was asked, such as a
    bare name that is no bank's): bad usage, exit 2, like click's own usage errors."""

    code = "usage"
    exit_code = 2


class WalletError(CliError):
    """The wallet file is missing, damaged, or the passphrase is wrong."""

    code = "wallet_error"


class DamagedCopyError(WalletError):
    """The wallet's own copy of its chain is missing or does not verify: only a rebuild from
    the bank (``tchain sync --rebuild``) mends it, and only when asked."""

    code = "damaged_copy"


class WalletBusyError(WalletError):
    """Another ``tchain`` command held the wallet for longer than this one would wait."""

    code = "wallet_busy"


class BankError(CliError):
    """The bank refused a request (carries its code and message) or could not be reached."""

    code = "bank_error"


class UnreachableError(BankError):
    """A bank did not answer at all (refused connection, timeout): nothing was done there."""

    code = "unreachable"


class NotDoneError(CliError):
    """The bank signed the intent, but the bank on the other side refused the flow it began
    and what was held for it was released: what was asked did not happen."""

    code = "released"


class SecurityError(CliError):
    """The bank served something that contradicts what this wallet already verified."""

    code = "security"
