# %% [markdown]
# # Profiling the real BBBC021 wells step by step
# The same steps as `kedro run --pipelines=profiling --env bbbc021`, one at a time, so each
# intermediate table can be looked at. Run from the repository root (cells work in VS Code /
# jupytext, or `python notebooks/profiling_bbbc021.py`).

# %%
from cellbench.ingest import ljosa_profiles
from cellbench.metadata import feature_columns
from cellbench.metrics.retrieval import average_precision, mean_average_precision, nsc_nscb
from cellbench.profiling import feature_select, normalize, treatment_profiles, tvn

raw = "data/01_raw/bbbc021_ljosa2013/"
wells = ljosa_profiles(raw + "ljosa_jbiomolscreen_2013_per_well_mean.csv.gz", raw + "BBBC021_v1_image.csv.gz",
                       raw + "BBBC021_v1_moa.csv")
print(wells.shape, int(wells["Metadata_Control"].sum()), "DMSO wells")

# %% [markdown]
# Per-plate DMSO z-score (pycytominer's `normalize` fitted and applied plate by plate), then
# feature selection, then treatment profiles (mean of wells).

# %%
z = normalize(wells, samples="Metadata_Control == True", by="Metadata_Plate")
z = feature_select(z, operation=["drop_na_columns", "variance_threshold", "correlation_threshold"])
t = treatment_profiles(z, operation="mean", exclude="Metadata_Control == True")
res = nsc_nscb(t, t[feature_columns(t)].to_numpy())
print(f"NSC {res['nsc']:.3f} ({res['nsc_correct']}/{res['nsc_n']}), NSCB {res['nscb']:.3f} "
      f"({res['nscb_correct']}/{res['nscb_n']}); dropped for NSCB: {res['nscb_dropped_moas']}")

# %% [markdown]
# Which MoAs are missed? (rows: true MoA; the 1-NN's MoA when wrong)

# %%
wrong = res["nsc_table"][~res["nsc_table"]["correct"]]
print(wrong.groupby(["Metadata_MoA", "predicted"]).size().sort_values(ascending=False).head(10))

# %% [markdown]
# TVN on all DMSO wells, and MoA retrieval mAP with a permutation p-value per MoA.

# %%
w = tvn(z, reg=1.0)
tw = treatment_profiles(w, operation="median", exclude="Metadata_Control == True")
print("TVN NSC / NSCB:", {k: round(v, 3) for k, v in nsc_nscb(tw, tw[feature_columns(tw)].to_numpy()).items()
                          if k in ("nsc", "nscb")})
ap = average_precision(t, t[feature_columns(t)].to_numpy(), pos_sameby=["Metadata_MoA"],
                       pos_diffby=["Metadata_Compound"], neg_sameby=[], neg_diffby=["Metadata_MoA"])
print(mean_average_precision(ap, ["Metadata_MoA"], null_size=1000).round(3).to_string(index=False))
