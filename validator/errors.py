"""The validator's own errors (set-up and operation); wire errors come from ``tchain.errors``."""

from tchain.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    HeadersTooLargeError,
    HttpVersionError,
    InternalError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    StoreError,
    TChainError,
    TooLargeError,
    UnimplementedError,
    UnsupportedMediaTypeError,
    UriTooLongError,
    WireError,
)

__all__ = ["HTTP_ERROR_CODES", "AddressInUseError", "ConfigError", "DataDirInUseError",
           "ValidatorError"]

# The class of each HTTP status the app or the server answers without a more precise one
# (docs/protocol.md §6): its code is what such an answer says.
_BY_STATUS: tuple[type[WireError], ...] = (
    BadRequestError, AuthError, ForbiddenError, NotFoundError, MethodNotAllowedError,
    RequestTimeoutError, ConflictError, TooLargeError, UriTooLongError,
    UnsupportedMediaTypeError, RateLimitedError, HeadersTooLargeError, InternalError,
    UnimplementedError, StoreError, HttpVersionError)
HTTP_ERROR_CODES = {error.status: error.code for error in _BY_STATUS}


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


class DataDirInUseError(ValidatorError):
    """Another ``serve`` already runs on the data directory ``serve`` was given."""

    code = "data_dir_in_use"
