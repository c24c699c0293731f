import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion

from cellbench.metrics import balanced_error, confusion_matrix, per_class_sensitivity


def test_balanced_error_hand_case():
    # class 0 recall 2/3, class 1 recall 1/1 -> balanced accuracy 5/6
    assert balanced_error([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(1 / 6)


def test_balanced_error_matches_sklearn(rng):
    for _ in range(5):
        y = rng.integers(0, 7, 300)
        p = np.where(rng.random(300) < 0.7, y, rng.integers(0, 7, 300))
        assert balanced_error(y, p) == pytest.approx(1 - balanced_accuracy_score(y, p), abs=1e-12)


def test_confusion_matches_sklearn(rng):
    y, p = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    np.testing.assert_array_equal(confusion_matrix(y, p, [0, 1, 2, 3]), sk_confusion(y, p, labels=[0, 1, 2, 3]))


def test_sensitivity_of_absent_class_is_nan():
    s = per_class_sensitivity([0, 0, 1], [0, 1, 1], labels=[0, 1, 2])
    assert s[0] == 0.5 and s[1] == 1.0 and np.isnan(s[2])


def test_length_mismatch():
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        balanced_error([0, 1, 1], [0, 1])
