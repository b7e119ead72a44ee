"""The one exception type the command-line scripts turn into a one-line error."""


class PipelineError(Exception):
    """Expected bad input or environment problem; the message is shown to the user as is."""
