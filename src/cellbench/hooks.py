"""Project hooks: every parameter section is validated once the run's configuration is known
(``--env`` and ``--params`` merged), before MLflow starts a run and before any node does work."""

from __future__ import annotations

import logging

from kedro.framework.hooks import hook_impl

from cellbench.parameters import validate_parameters

log = logging.getLogger(__name__)


class ValidateParameters:
    """Builds the typed configuration of every section (``cellbench.parameters.SECTIONS``); an
    unknown or misspelt key, a missing one or a value of the wrong kind stops the run with a
    ``ConfigError`` naming its full path."""

    @hook_impl
    def after_context_created(self, context) -> None:
        sections = validate_parameters(context.params)
        log.info("parameters validated: %s", ", ".join(sorted(sections)))
