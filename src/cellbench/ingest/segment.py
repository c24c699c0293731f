"""Fields of view to single-cell crops: nuclei segmentation, illumination correction, cropping.

The recipe of the seeds (PCI's HPA crops and DeepProfiler, METHODS.md sections 2 and 5):
Gaussian smoothing of the DNA channel, Otsu threshold, hole filling, a size filter, touching nuclei
split by a watershed on the distance transform; fixed-size crops centred on the nuclei, crops that
would leave the frame skipped; optionally an illumination function per plate (the smoothed median
image, DeepProfiler's ``illumination_correction``) divided out first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage as ndi


def segment_nuclei(image: np.ndarray, sigma: float = 1.5, min_area: int = 30, max_area: int | None = None,
                   fill_holes: bool = True, split_touching: bool = True, min_distance: int = 4,
                   clear_border: bool = False) -> np.ndarray:
    """Label image (int32, 0 = background, nuclei 1..n) of a DNA-stain image ``H x W``.

    1. smooth with a Gaussian of ``sigma`` px; 2. threshold at Otsu's level of the smoothed image;
    3. fill holes; 4. split touching nuclei: markers = local maxima of the (smoothed) Euclidean
    distance transform at least ``min_distance`` px apart, watershed of ``-distance`` inside the mask;
    5. drop objects smaller than ``min_area`` (or larger than ``max_area``) px and, if asked, those
    touching the border; relabel 1..n in raster order of their first pixel.
    """
    from skimage.filters import threshold_otsu
    from skimage.segmentation import clear_border as _clear_border
    from skimage.segmentation import watershed

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"segment_nuclei: image must be 2-D (H x W), got shape {image.shape}")
    if sigma < 0 or min_area < 0 or min_distance < 1:
        raise ValueError(f"segment_nuclei: sigma and min_area must be >= 0 and min_distance >= 1, "
                         f"got sigma={sigma}, min_area={min_area}, min_distance={min_distance}")
    smooth = ndi.gaussian_filter(image.astype(np.float64), sigma) if sigma > 0 else image.astype(np.float64)
    if smooth.max() == smooth.min():
        return np.zeros(image.shape, dtype=np.int32)
    mask = smooth > threshold_otsu(smooth)
    if fill_holes:
        mask = ndi.binary_fill_holes(mask)
    if split_touching:
        from skimage.feature import peak_local_max

        dist = ndi.gaussian_filter(ndi.distance_transform_edt(mask), 1.0)
        components, _ = ndi.label(mask)
        peaks = peak_local_max(dist, min_distance=int(min_distance), labels=components, exclude_border=False)
        markers = np.zeros(image.shape, dtype=np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        # components without a peak (tiny or flat) keep a marker of their own
        orphan = np.setdiff1d(np.unique(components[mask]), np.unique(components[markers > 0]))
        for k, comp in enumerate(orphan, start=len(peaks) + 1):
            markers[np.unravel_index(np.argmax(components == comp), image.shape)] = k
        labels = watershed(-dist, markers, mask=mask)
    else:
        labels, _ = ndi.label(mask)
    if clear_border:
        labels = _clear_border(labels)
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    if max_area is not None:
        keep &= areas <= max_area
    keep[0] = False
    lut = np.zeros(len(areas), dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[labels]


def nucleus_table(labels: np.ndarray) -> pd.DataFrame:
    """Object number, area and centre of mass (x = column, y = row) of every labelled nucleus."""
    n = int(labels.max())
    if n == 0:
        return pd.DataFrame({"ObjectNumber": [], "Area": [], "Center_X": [], "Center_Y": []})
    index = np.arange(1, n + 1)
    centres = np.asarray(ndi.center_of_mass(np.ones_like(labels), labels, index), dtype=np.float64).reshape(n, 2)
    return pd.DataFrame({"ObjectNumber": index, "Area": np.bincount(labels.ravel(), minlength=n + 1)[1:],
                         "Center_X": centres[:, 1], "Center_Y": centres[:, 0]})


def crop_cells(image: np.ndarray, centers_yx: np.ndarray, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``crop_size`` x ``crop_size`` crops of ``image`` (``C x H x W``) centred on each (y, x).

    The window of a centre (y, x) is rows ``round(y) - s//2 .. + s`` (same for columns); windows that
    leave the frame are skipped. Returns ``(crops N x C x s x s, kept indices into centers_yx)``.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"crop_cells: image must be C x H x W, got shape {image.shape}")
    if crop_size <= 0:
        raise ValueError(f"crop_cells: crop_size must be positive, got {crop_size}")
    _, h, w = image.shape
    centers = np.rint(np.asarray(centers_yx, dtype=np.float64).reshape(-1, 2)).astype(np.int64)
    top, left = centers[:, 0] - crop_size // 2, centers[:, 1] - crop_size // 2
    inside = (top >= 0) & (left >= 0) & (top + crop_size <= h) & (left + crop_size <= w)
    kept = np.flatnonzero(inside)
    crops = np.stack([image[:, t:t + crop_size, l:l + crop_size] for t, l in zip(top[kept], left[kept])]) \
        if len(kept) else np.empty((0, image.shape[0], crop_size, crop_size), dtype=image.dtype)
    return crops, kept


def illumination_function(images: np.ndarray, downscale: int = 4, median_size: int = 24) -> np.ndarray:
    """Illumination function of one channel of one plate: the smoothed per-pixel median image.

    ``images`` is ``N x H x W``. The median over images is block-averaged by ``downscale``, median
    filtered with a ``median_size`` window (DeepProfiler's defaults 4 and 24), upsampled back and
    divided by its mean so that correcting (``image / function``) keeps the plate's intensity scale.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"illumination_function: images must be N x H x W with N >= 1, got {images.shape}")
    if downscale < 1 or median_size < 1:
        raise ValueError(f"illumination_function: downscale and median_size must be >= 1, "
                         f"got {downscale}, {median_size}")
    med = np.median(images, axis=0)
    h, w = med.shape
    hh, ww = -(-h // downscale), -(-w // downscale)
    padded = np.pad(med, ((0, hh * downscale - h), (0, ww * downscale - w)), mode="edge")
    small = padded.reshape(hh, downscale, ww, downscale).mean(axis=(1, 3))
    small = ndi.median_filter(small, size=median_size, mode="nearest")
    full = ndi.zoom(small, downscale, order=1)[:h, :w]
    full = np.maximum(full, 1e-6 * max(full.max(), 1e-12))
    return full / full.mean()


def nuclei_quality(image: np.ndarray, labels: np.ndarray, sigma: float = 1.5) -> dict:
    """How believable a field's segmentation is:

    * ``nuclei``: the number of objects;
    * ``separability``: Otsu's effectiveness of the smoothed DNA image, the between-class share of
      its variance, ``eta = w0 w1 (mu1 - mu0)^2 / var`` (Otsu 1979); about 0.64 for pure noise (a
      unimodal histogram), 0.77 for the CellProfiler ExampleHuman DNA field;
    * ``covered``: the fraction of the field inside nuclei (noise gives about 0.6);
    * ``verdict``: ``no nuclei``, ``implausible`` (separability < 0.7 or covered > 0.5) or ``ok``.
    """
    from skimage.filters import threshold_otsu

    smooth = ndi.gaussian_filter(np.asarray(image, np.float64), sigma) if sigma > 0 else np.asarray(image, np.float64)
    eta = 0.0
    if smooth.var() > 0:
        mask = smooth > threshold_otsu(smooth)
        w1 = mask.mean()
        if 0 < w1 < 1:
            eta = float(w1 * (1 - w1) * (smooth[mask].mean() - smooth[~mask].mean()) ** 2 / smooth.var())
    n, covered = int(labels.max()), float((labels > 0).mean())
    verdict = "no nuclei" if n == 0 else ("implausible" if eta < 0.7 or covered > 0.5 else "ok")
    return {"nuclei": n, "separability": eta, "covered": covered, "verdict": verdict}


def field_to_crops(image: np.ndarray, nucleus_channel: int = 0, crop_size: int = 64, min_cells: int = 1,
                   illumination: np.ndarray | None = None, **segment_args) -> tuple[np.ndarray, pd.DataFrame]:
    """Crops of every nucleus of one field of view ``C x H x W`` and their ``Metadata_`` table.

    ``illumination`` (``C x H x W``, from :func:`illumination_function`) is divided out first
    (output float32); otherwise the dtype is kept (uint8 widened to uint16). A field with fewer than
    ``min_cells`` croppable nuclei yields no crops. Every crop carries its field's
    :func:`nuclei_quality` (``Metadata_Field_Nuclei``, ``_Separability``, ``_Verdict``); the
    metadata's ``attrs["quality"]`` holds it even when no crop is kept.
    """
    image = np.asarray(image)
    if image.ndim != 3 or not 0 <= nucleus_channel < image.shape[0]:
        raise ValueError(f"field_to_crops: image must be C x H x W with nucleus_channel < C, "
                         f"got shape {image.shape} and nucleus_channel={nucleus_channel}")
    if illumination is not None:
        image = (image / np.asarray(illumination)).astype(np.float32)
    elif image.dtype == np.uint8:
        image = image.astype(np.uint16)
    elif image.dtype not in (np.uint16, np.float32):
        image = image.astype(np.float32)
    labels = segment_nuclei(image[nucleus_channel], **segment_args)
    quality = nuclei_quality(image[nucleus_channel], labels, segment_args.get("sigma", 1.5))
    table = nucleus_table(labels)
    crops, kept = crop_cells(image, table[["Center_Y", "Center_X"]].to_numpy(), crop_size)
    table = table.iloc[kept].reset_index(drop=True)
    if len(table) < min_cells:
        crops, table = crops[:0], table.iloc[:0]
    meta = pd.DataFrame({
        "Metadata_ObjectNumber": table["ObjectNumber"].to_numpy(np.int64),
        "Metadata_Nuclei_Location_Center_X": table["Center_X"].to_numpy(),
        "Metadata_Nuclei_Location_Center_Y": table["Center_Y"].to_numpy(),
        "Metadata_Nuclei_Area": table["Area"].to_numpy(np.int64),
        "Metadata_Field_Nuclei": np.full(len(table), quality["nuclei"], np.int64),
        "Metadata_Field_Separability": np.full(len(table), quality["separability"]),
        "Metadata_Field_Verdict": np.full(len(table), quality["verdict"], dtype=object),
    })
    meta.attrs["quality"] = quality
    return crops, meta
