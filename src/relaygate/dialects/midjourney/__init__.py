"""The Midjourney dialect (spec/midjourney.md): the midjourney-proxy task API as relaygate relays it.

Pure, no I/O: request checks per submit endpoint (``requests``), the result codes and task statuses
(``codes``), the price names' defaults (``pricing``), how a task is shown to its owner (``task``) and how a
relaygate error is rendered as a ``SubmitResultVO`` (``errors``).
"""
