"""A gradient-boosted tree ensemble as plain arrays, evaluated with numpy only.

Every tree is stored as a *complete* binary tree of the ensemble's depth in heap order: node
``k`` has children ``2k+1`` and ``2k+2``; a leaf that LightGBM put higher up is pushed down
through dummy splits that always go left (threshold +inf) to copies of itself. Prediction then
walks all trees for all blocks at once, one gather per level, with no per-tree Python:

    idx = 0 for every (block, tree)
    repeat depth times: idx = 2*idx + 1 + (x[block, feature[tree, idx]] > threshold[tree, idx])
    score = sum over trees of leaf[tree, idx - internal_nodes]

Thresholds are float32 rounded down from LightGBM's doubles, which keeps ``x <= t`` exact for
float32 features. Files load with ``allow_pickle=False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CHUNK_CELLS = 2_000_000  # (row, tree) pairs evaluated at once


@dataclass(slots=True)
class TreeEnsemble:
    feature: np.ndarray  # int32 (trees, 2**depth - 1)
    threshold: np.ndarray  # float32 (trees, 2**depth - 1)
    leaf: np.ndarray  # float64 (trees, 2**depth)
    depth: int
    bias: float = 0.0  # added to the raw score (e.g. to move the decision threshold to 0.5)

    @property
    def n_trees(self) -> int:
        return int(self.feature.shape[0])

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """Sum of leaf values per row of X (float32, shape (rows, features))."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        # (rows x trees) index arrays: in slices, so a page of a million blocks stays small
        step = max(1, _CHUNK_CELLS // max(self.n_trees, 1))
        if len(X) > step:
            return np.concatenate([self._raw(X[i : i + step]) for i in range(0, len(X), step)])
        return self._raw(X)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        rows, n_features = X.shape
        trees, internal = self.feature.shape
        if rows == 0:
            return np.zeros(0)
        # int32 indices (half the memory traffic of int64) unless the page is enormous
        itype = np.int32 if rows * n_features < 2**31 and trees * internal < 2**31 else np.int64
        feat = self.feature.ravel().astype(itype, copy=False)
        thr = self.threshold.ravel()
        flat_x = X.ravel()
        tree_base = np.arange(trees, dtype=itype) * internal
        row_base = np.arange(rows, dtype=itype)[:, None] * n_features
        node = np.broadcast_to(tree_base, (rows, trees)).copy()  # global index of (row, tree)
        # heap child of local k = node - base is 2k+1+right: in global terms 2*node-base+1+right
        step = 1 - tree_base
        # in place, into buffers allocated once (take with mode="clip" needs no bounds buffer;
        # every index is in range)
        at = np.empty_like(node)
        x = np.empty((rows, trees), dtype=np.float32)
        t = np.empty((rows, trees), dtype=np.float32)
        go_right = np.empty((rows, trees), dtype=bool)
        for _ in range(self.depth):
            np.take(feat, node, out=at, mode="clip")
            at += row_base
            np.take(flat_x, at, out=x, mode="clip")
            np.take(thr, node, out=t, mode="clip")
            np.greater(x, t, out=go_right)
            node *= 2
            node += step
            node += go_right
        leaf_base = np.arange(trees, dtype=itype) * self.leaf.shape[1]
        leaf_index = node - tree_base - internal + leaf_base
        return self.leaf.ravel()[leaf_index].sum(axis=1) + self.bias

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probability of the positive class (logistic of the raw score)."""
        return 1.0 / (1.0 + np.exp(-self.raw_score(X)))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}feature": self.feature,
            f"{prefix}threshold": self.threshold,
            f"{prefix}leaf": self.leaf,
            f"{prefix}shape": np.array([self.depth], dtype=np.int64),
            f"{prefix}bias": np.array([self.bias]),
        }

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> TreeEnsemble:
        return cls(
            feature=np.asarray(arrays[f"{prefix}feature"], dtype=np.int32),
            threshold=np.asarray(arrays[f"{prefix}threshold"], dtype=np.float32),
            leaf=np.asarray(arrays[f"{prefix}leaf"], dtype=np.float64),
            depth=int(arrays[f"{prefix}shape"][0]),
            bias=float(arrays[f"{prefix}bias"][0]),
        )


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def from_lightgbm_dump(dump: dict, depth: int) -> TreeEnsemble:
    """Convert ``Booster.dump_model()`` (numerical splits, ``<=``) to complete trees."""
    trees = dump["tree_info"]
    internal, leaves = 2**depth - 1, 2**depth
    feature = np.zeros((len(trees), internal), dtype=np.int32)
    threshold = np.full((len(trees), internal), np.inf, dtype=np.float32)
    leaf = np.zeros((len(trees), leaves), dtype=np.float64)
    for t, info in enumerate(trees):
        # explicit stack instead of recursion: (LightGBM node, heap position, level)
        stack = [(info["tree_structure"], 0, 0)]
        while stack:
            node, pos, level = stack.pop()
            if "leaf_value" in node or "split_feature" not in node:
                value = node.get("leaf_value", 0.0)
                # a leaf at `level` covers 2**(depth-level) leaf slots below its position
                first = pos
                for _ in range(depth - level):
                    first = 2 * first + 1
                span = 2 ** (depth - level)
                leaf[t, first - internal : first - internal + span] = value
                continue
            if level >= depth:
                raise ValueError(f"tree {t} is deeper than {depth}")
            if node.get("decision_type", "<=") != "<=":
                raise ValueError("only numerical '<=' splits are supported")
            feature[t, pos] = node["split_feature"]
            threshold[t, pos] = _floor32(float(node["threshold"]))
            stack.append((node["left_child"], 2 * pos + 1, level + 1))
            stack.append((node["right_child"], 2 * pos + 2, level + 1))
    return TreeEnsemble(feature, threshold, leaf, depth)


def _floor32(x: float) -> np.float32:
    """The largest float32 not above x, so that float32 ``v <= x`` iff ``v <= result``."""
    f = np.float32(x)
    if float(f) > x:
        f = np.nextafter(f, np.float32(-np.inf))
    return f
