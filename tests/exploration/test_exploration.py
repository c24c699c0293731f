"""Seed 002's exploratory scores: hand-computed cases, agreement with scikit-learn / scipy, the
whole analysis on a simulated library, and bad input."""

import numpy as np
import pandas as pd
import pytest
from scipy.cluster import hierarchy
from sklearn.metrics import adjusted_rand_score

from cellbench.exploration import (ExplorationConfig, cluster_proteins, cluster_scores, explore,
                                   multilocalisation_score, protein_profiles, rare_neighbours)
from cellbench.metrics.retrieval import cell_line_distance_scores, image_distances, pairwise_distance_score

CONFIG = dict(linkage="average", min_cells_per_protein=2, rare_class="Nucleolar Rim", rare_window=5, n_pairs=200,
              cell_line_pairs=2000, seed=0)


def test_multilocalisation_score_by_hand():
    feats = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.5, 1.0]])
    score = multilocalisation_score(feats, ref_a=[1.0, 0.0], ref_b=[0.0, 2.0])
    # d_A = 1, sqrt(0)->tiny, sqrt(5), sqrt(1.25); d_B = 2, sqrt(5), 0->tiny, sqrt(1.25)
    assert score[0] == pytest.approx(np.log(1 / 2))
    assert score[1] < -100 and score[2] > 100  # on a reference: as close as it gets
    assert score[3] == pytest.approx(0.0)


def _four_images():
    """A, B (label x, proteins 1, 2) cells at (0, +-1); C, D (label y, proteins 3, 4) at (4, +-1).
    Standardised: x -> -1 / +1, y -> -1 / +1, so D(A, B) = mean(0, 2, 2, 0) = 1 and
    D(A, C) = mean(2, sqrt 8, sqrt 8, 2) = 1 + sqrt 2."""
    cells = np.array([[0, 1], [0, -1]] * 2 + [[4, 1], [4, -1]] * 2, float)
    image = np.repeat(["A", "B", "C", "D"], 2)
    label = np.repeat(["x", "x", "y", "y"], 2)
    return cells, image, label


def test_image_distances_by_hand():
    cells, image, _ = _four_images()
    z = (cells - cells.mean(0)) / cells.std(0)
    ids, dist = image_distances(z, image, chunk=3)  # chunks cut through images
    assert list(ids) == ["A", "B", "C", "D"]
    assert dist[0, 1] == pytest.approx(1.0) and dist[0, 2] == pytest.approx(1 + np.sqrt(2))
    assert dist[2, 3] == pytest.approx(1.0) and dist[1, 3] == pytest.approx(1 + np.sqrt(2))


def test_pairwise_distance_score_by_hand():
    cells, image, label = _four_images()
    score = pairwise_distance_score(cells, image, label, n_pairs=50).set_index("label")["score"]
    expected = 1 / (1 + np.sqrt(2)) - 1  # every same pair at 1, every different pair at 1 + sqrt 2
    assert score["x"] == pytest.approx(expected) and score["y"] == pytest.approx(expected)
    assert score["overall"] == pytest.approx(expected)


def test_pairwise_distance_score_separates_and_shuffles(rng):
    centres = {"er": np.zeros(5), "golgi": np.full(5, 4.0)}
    rows, images, labels = [], [], []
    for k in range(60):
        lab = "er" if k % 2 else "golgi"
        rows.append(centres[lab] + rng.normal(size=(5, 5)))
        images += [k] * 5
        labels += [lab] * 5
    score = pairwise_distance_score(np.concatenate(rows), np.array(images), np.array(labels), n_pairs=50)
    assert set(score["label"]) == {"er", "golgi", "overall"}
    assert (score["score"] < -0.3).all()
    per_image = rng.permutation(np.array(labels).reshape(60, 5)[:, 0])
    shuffled = pairwise_distance_score(np.concatenate(rows), np.array(images), np.repeat(per_image, 5), n_pairs=200)
    assert abs(shuffled.set_index("label").loc["overall", "score"]) < 0.2


def test_cell_line_control_penalises_a_morphology_feature(rng):
    """A feature that follows the cell line makes different-line pairs of one label farther apart:
    the different-line score rises above the same-line score (Table 2's difference > 0)."""
    rows, image, label, line, protein = [], [], [], [], []
    for p in range(16):
        lab, cl = p % 2, (p // 2) % 2
        x = rng.normal(size=(10, 3))
        x[:, 0] += 3 * lab
        x[:, 1] += 3 * cl  # morphology
        rows.append(x)
        image += [f"i{p}"] * 10
        label += [lab] * 10
        line += [f"line{cl}"] * 10
        protein += [p] * 10
    s = cell_line_distance_scores(np.concatenate(rows), np.array(image), np.array(label), np.array(line),
                                  n_pairs=500, group=np.array(protein))
    assert s["same_cell_line"] < s["different_cell_line"] < 0
    assert s["difference"] == pytest.approx(s["different_cell_line"] - s["same_cell_line"])
    s2 = cell_line_distance_scores(np.concatenate(rows)[:, [0, 2]], np.array(image), np.array(label), np.array(line),
                                   n_pairs=500, group=np.array(protein))
    assert abs(s2["difference"]) < abs(s["difference"])  # without the morphology feature


def test_pairwise_scores_refuse_a_class_with_one_protein():
    cells, image, label = _four_images()
    with pytest.raises(ValueError, match="class 'y' has 1 protein"):
        pairwise_distance_score(cells, image, label, group=np.repeat([1, 2, 3, 3], 2))
    with pytest.raises(ValueError, match="image 'A' has cells of more than one label"):
        pairwise_distance_score(cells, image, np.array(list("xyxxyyyy")))


def _profiles_table(rng, classes=("a", "b", "c"), per_class=4, cells=6):
    rows = []
    for k, cls in enumerate(classes):
        centre = np.eye(len(classes))[k] * 6
        for p in range(per_class):
            for _ in range(cells):
                rows.append({"Metadata_Protein": f"{cls}{p}", "Metadata_Compartments": cls,
                             "Metadata_Kind": "single", **{f"f{j}": v for j, v in enumerate(centre + rng.normal(size=3))}})
    return pd.DataFrame(rows)


def test_protein_clustering_recovers_separated_classes(rng):
    table = _profiles_table(rng)
    profiles = protein_profiles(table, "Metadata_Protein", min_cells=2)
    assert len(profiles) == 12 and (profiles["Metadata_Cells"] == 6).all()
    np.testing.assert_allclose(profiles.set_index("Metadata_Protein").loc["a0", "f0"],
                               table.loc[table.Metadata_Protein == "a0", "f0"].mean())
    tree = cluster_proteins(profiles, "average")
    truth = profiles["Metadata_Compartments"].to_numpy()
    scores = cluster_scores(truth, tree, np.ones(12, bool))
    assert scores["ari"] == 1.0 and scores["purity"] == 1.0 and scores["clusters"] == 3
    # parity: the cut and its ARI as scipy and scikit-learn compute them
    cut = hierarchy.fcluster(tree, t=3, criterion="maxclust")
    shuffled = np.random.default_rng(1).permutation(truth)
    assert cluster_scores(shuffled, tree, np.ones(12, bool))["ari"] == pytest.approx(adjusted_rand_score(shuffled, cut))


def test_rare_neighbours_by_hand():
    profiles = pd.DataFrame({"Metadata_Protein": list("kabcde"), "f0": [0.0, 0.1, 0.3, 5.0, 5.2, 9.0],
                             "f1": [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]})
    tree = cluster_proteins(profiles, "average")
    out = rare_neighbours(profiles, tree, known=0, members=np.array([0, 2, 4]), window=2)
    # ranks from k: a (1), b (2), then c, d (3, 4), e (5)
    assert out["ranks"] == [2, 4] and out["hits"] == 1
    assert out["expected"] == pytest.approx(2 * 2 / 5)


def test_a_protein_with_one_cell_is_named(rng):
    table = _profiles_table(rng)
    table = table[~((table.Metadata_Protein == "b2") & (table.index % 6 != 0))]
    with pytest.raises(ValueError, match="protein 'b2' has 1 cell"):
        protein_profiles(table, "Metadata_Protein", min_cells=2)


@pytest.fixture(scope="module")
def library_texture():
    from cellbench.representations import run
    from cellbench.simulate import LibraryDesign, simulate_library

    design = LibraryDesign(proteins_per_class=4, cells_per_image=8, variable_cells=30, multi_proteins_per_pair=3)
    crops = simulate_library(design).materialize()
    params = {"distances": [1, 2, 4, 8], "levels": 256, "batch_size": 2048, "n_jobs": 1}
    return run("texture", crops, params, "t").layers["haralick"]


def test_explore_a_simulated_library(library_texture):
    result = explore(library_texture, ExplorationConfig.from_params(CONFIG, "exploration.analysis"))
    s = result.scores
    assert 0.2 < s["protein_ari"] <= 1 and 0.4 < s["protein_purity"] <= 1
    assert s["rare_others"] == 2 and 0 <= s["rare_hits"] <= 2 and s["rare_expected"] < 0.5
    assert s["multiloc_spearman"] > 0.3  # texture sees the mixing proportion
    assert -1 < s["pairwise_overall"] < -0.1 and s["same_cell_line"] < 0
    assert set(result.per_pair["pair"]) == {"Cytosol|Nucleoplasm", "Nucleoli|Nucleoplasm"}
    assert set(result.multiloc["Metadata_Group"]) == {"Cytosol", "Nucleoli", "Nucleoplasm", "mixed"}
    assert len(result.cell_trees) == 3 and result.clades.groupby("Metadata_Protein")["clade"].nunique().eq(2).all()
    assert set(result.profiles["Metadata_Protein"]) == set(library_texture["Metadata_Protein"])


def test_explore_bad_input_names_the_culprit(library_texture):
    config = ExplorationConfig.from_params(CONFIG, "exploration.analysis")
    with pytest.raises(ValueError, match="missing column.*Metadata_CellLine"):
        explore(library_texture.drop(columns="Metadata_CellLine"), config)
    bad = library_texture.copy()
    col = [c for c in bad.columns if not c.startswith("Metadata_")][3]
    bad.loc[5, col] = np.nan
    with pytest.raises(ValueError, match=f"column '{col}' has NaN"):
        explore(bad, config)
    with pytest.raises(ValueError, match="rare_class: 'Lysosome' has 0 protein"):
        explore(library_texture, config.replace(rare_class="Lysosome"))
    with pytest.raises(ValueError, match=r"exploration.analysis.linkage: 'upgma' is not one of"):
        ExplorationConfig.from_params({**CONFIG, "linkage": "upgma"}, "exploration.analysis")
    with pytest.raises(ValueError, match=r"exploration.analysis.n_pair: unknown parameter"):
        ExplorationConfig.from_params({**CONFIG, "n_pair": 3}, "exploration.analysis")
