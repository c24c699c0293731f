# %% [markdown]
# # Domain adaptation results, after `kedro run --pipelines=domain_adaptation`
# Reads the pipeline's outputs from `data/` (run from the repository root; cells work in VS Code /
# jupytext, or `python notebooks/domain_adaptation.py`). Shows the in-source / out-of-source gap
# per method, how much each adaptation recovered per pair, the granularity study and CKA.

# %%
import pandas as pd

pd.set_option("display.width", 160)

from cellbench.adaptation.experiment import summarise
from cellbench.reporting.adaptation import gap_table

results = pd.read_parquet("data/07_model_output/domain_adaptation/results.parquet")
summary = summarise(results)
print(results.groupby("method").size().rename("rows (seeds x pairs)"))
print((100 * gap_table(summary, "accuracy")).round(1))

# %% [markdown]
# Recovery per pair: adapted accuracy minus the unadapted dual model it starts from (ODA from
# the DINO foundation, CODA from the cross-batch one), per seed, in points.

# %%
off = results[results["source"] != results["target"]].set_index(["seed", "source", "target", "method"])["accuracy"]
wide = off.unstack("method")
diag = results[(results["source"] == results["target"]) & (results["method"] == "supervised")]
in_source = diag.set_index(["seed", "source"])["accuracy"]
recovery = pd.DataFrame({
    "ODA - Dual DINO": wide["oda"] - wide["dual_dino"],
    "CODA - Dual CB": wide["coda"] - wide["dual_cb"],
    "gap (Supervised in-source - out)": [in_source[(s, src)] - wide.loc[(s, src, t), "supervised"]
                                         for s, src, t in wide.index]}, index=wide.index)
print((100 * recovery).round(1))
print((100 * recovery.groupby(level=["source", "target"]).mean()).round(1))

# %% [markdown]
# Granularity (adaptation unit) and how much each block of the foundation moved (linear CKA).

# %%
gran = pd.read_parquet("data/07_model_output/domain_adaptation/granularity.parquet")
print(gran.pivot_table(index="granularity", columns="method", values="accuracy").mul(100).round(1))
cka = pd.read_parquet("data/07_model_output/domain_adaptation/cka.parquet")
print(cka.pivot_table(index="layer", columns="method", values="cka").round(3))
