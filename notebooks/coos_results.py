# %% [markdown]
# # Reading a `coos_benchmark` run
# Run `kedro run --pipelines=coos_benchmark` first. Cells work in VS Code / jupytext.

# %%
import os

import mlflow
import pandas as pd

results = pd.read_csv("data/08_reporting/coos_benchmark_results.csv")
results.pivot_table(index=["representation", "layer", "classifier"], columns="split", values="balanced_error").round(3)

# %% [markdown]
# The same numbers live in MLflow as `coos/{representation}_{layer}/{classifier}/{split}/balanced_error`.

# %%
mlflow.set_tracking_uri(os.environ.get("CELLBENCH_MLFLOW_URI", "sqlite:///mlflow.db"))  # the project's store
runs = mlflow.search_runs(experiment_names=["cellbench"], order_by=["start_time DESC"])
runs.filter(like="metrics.coos/").T.head(20)
