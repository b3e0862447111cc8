"""The validator's own errors (set-up and operation); wire errors come from ``tchain.errors``."""

from tchain.errors import TChainError

__all__ = ["HTTP_ERROR_CODES", "AddressInUseError", "ConfigError", "DataDirInUseError",
           "ValidatorError"]

# The code of each HTTP status the app or the server answers without a more precise one
# (PROTOCOL.md §6 and docs/protocol.md §6).
HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 408: "request_timeout", 409: "conflict",
                    413: "too_large", 414: "uri_too_long", 415: "unsupported_media_type",
                    429: "rate_limited", 431: "headers_too_large", 500: "internal",
                    501: "not_implemented", 503: "unavailable",
                    505: "http_version_not_supported"}


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
