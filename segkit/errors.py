"""Errors caused by the user's input, reported as one line without a traceback."""


class SegkitError(Exception):
    """A mistake in the user's configuration or data; the message names what is at fault."""


class ConfigError(SegkitError):
    """A configuration value, or a combination of values, that cannot work."""


class DataError(SegkitError):
    """A dataset that is missing, incomplete, or holds files segkit cannot use."""


class TrainingDiverged(SegkitError):
    """The loss became NaN or infinite; usually a learning rate that is too high."""
