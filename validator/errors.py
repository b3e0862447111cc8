"""The validator's own errors (set-up and operation); wire errors come from ``tchain.errors``."""

from tchain.errors import TChainError

__all__ = ["AddressInUseError", "ConfigError", "ValidatorError"]


class ValidatorError(TChainError):
    """Root of the errors the validator shell raises."""

    code = "validator_error"
    status = 500


class ConfigError(ValidatorError):
    """The data directory is missing, incomplete or already initialised."""

    code = "config_error"


class AddressInUseError(ValidatorError):
    """Something already listens on the address ``serve`` was given."""

    code = "address_in_use"
