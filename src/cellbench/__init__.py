"""cellbench: single-cell microscopy representations under covariate shift.

A library of pure functions (``simulate``, ``features``, ``metrics``, ``reporting``, ...) with thin
Kedro pipelines on top (``cellbench.pipelines``). Library code never reads a catalog or a path.
"""

import os as _os

# Nothing in cellbench phones home: both frameworks' telemetry is off unless a user opts back in.
_os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
_os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"
