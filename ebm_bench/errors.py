"""Errors a user can act on. The CLI prints their message without a traceback."""


class EbmBenchError(Exception):
    """Base class: the message names the problem and how to fix it."""


class ConfigError(EbmBenchError):
    """A configuration value is invalid (unknown method, bad budget, ...)."""


class DataNotFoundError(EbmBenchError):
    """A dataset is not where we looked for it."""


class MethodContractError(EbmBenchError):
    """A method returned something the harness cannot train with."""
