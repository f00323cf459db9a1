"""A 2-D map of document embeddings: PCA always (numpy), UMAP when ``umap-learn`` is installed.

The map is fitted on every document shown (real and synthetic together), so that distances on it
compare the two. UMAP is used only up to ``UMAP_MAX`` documents: beyond that its fit takes longer
than a curator waits for a plot, and PCA's axes are exact.
"""

from __future__ import annotations

import importlib.util

import numpy as np

UMAP_MAX = 20_000


def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


def pca_2d(X: np.ndarray) -> np.ndarray:
    if len(X) == 0:
        return np.zeros((0, 2), dtype=np.float32)
    centred = X.astype(np.float64) - X.mean(axis=0)
    # the top two right singular vectors of the centred data are the principal axes
    _, _, vt = np.linalg.svd(centred[:: max(1, len(X) // 5000)], full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords.astype(np.float32)


def project_2d(X: np.ndarray, seed: int = 0, method: str = "auto") -> tuple[np.ndarray, str]:
    """(coordinates, the method used: ``umap`` or ``pca``)."""
    if method in ("auto", "umap") and umap_available() and 15 < len(X) <= UMAP_MAX:
        import umap  # type: ignore[import-not-found]

        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed)
        return np.asarray(reducer.fit_transform(X), dtype=np.float32), "umap"
    return pca_2d(X), "pca"
