"""Regression trees (CART, squared error) grown from presorted predictors: scikit-learn's best-split trees without
a sort at every node.

scikit-learn's ``DecisionTreeRegressor`` sorts a node's rows by every predictor at every node: 16 ms for a depth-4
tree on 6,000 rows and 9 predictors, most of the Data Mining Sharpener's fit (10 trees per model, 2 models per
tile). Here the rows are sorted once per predictor for the whole ensemble (:func:`presort`); a tree keeps each
predictor's order within every node by a stable partition at each split, so growing it costs O(rows x predictors)
per level (~1.5 ms for that tree). The splits are scikit-learn's: the split that maximises the squared-error proxy
``S_L^2 / W_L + S_R^2 / W_R`` over every predictor and every position between two values more than 1e-7 apart,
with the same leaf rules (depth, rows per leaf, weight per leaf, impurity at most machine epsilon), the threshold
halfway between the two float32 values, nodes numbered depth first, left before right. ``tests/test_kernels_dms.py``
checks that the trees equal scikit-learn's node for node on random data, ties included. Where two candidate splits'
proxies agree to rounding error, the winner depends on the order of the sums (scikit-learn adds in its node's sample
order and from the nearer end, and breaks exact ties between predictors in a random order; this builder adds in
sorted order and takes the first predictor), so a tree can differ there: on the 12 held-out family members
(``benchmarks/family.py``, 2026-12-05) six members moved by at most 1.5e-4 in segment ROC-AUC and 2.7e-4 in LST gain,
every mean unchanged at four decimals; the 48 km city's tiles came out bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heattrack.kernels.jit import compiled

_FEATURE_THRESHOLD = np.float32(1e-7)  # scikit-learn's: values closer than this are not split apart
_EPSILON = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Tree:
    """A fitted binary tree: per node its predictor and threshold (``x <= threshold`` goes left) and its children
    (-1 at a leaf); node 0 is the root. ``apply`` gives each row's leaf, as scikit-learn's ``tree_.apply``."""

    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64
    children_left: np.ndarray  # int64
    children_right: np.ndarray  # int64
    max_depth: int

    @property
    def node_count(self) -> int:
        return int(self.feature.size)

    @classmethod
    def from_sklearn(cls, tree) -> "Tree":
        t = tree.tree_
        return cls(t.feature.astype(np.int64), t.threshold.astype(np.float64), t.children_left.astype(np.int64),
                   t.children_right.astype(np.int64), int(t.max_depth))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The leaf of each row of ``X`` (float32 rows compared with the float64 thresholds)."""
        X = np.asarray(X, dtype=np.float32)
        node = np.zeros(X.shape[0], dtype=np.int64)
        for _ in range(self.max_depth):
            inner = self.children_left[node] >= 0
            if not inner.any():
                break
            k = node[inner]
            right = X[np.flatnonzero(inner), self.feature[k]] > self.threshold[k]
            node[inner] = np.where(right, self.children_right[k], self.children_left[k])
        return node


def presort(X: np.ndarray) -> np.ndarray:
    """``(predictors, rows)``: the rows in ascending order of each predictor (stable), once per ensemble."""
    return np.argsort(np.asarray(X, dtype=np.float32), axis=0, kind="stable").T.copy()


def grow_tree(X: np.ndarray, order: np.ndarray, y: np.ndarray, weight: np.ndarray, max_depth: int,
              min_samples_leaf: int, min_weight_leaf: float) -> tuple[Tree, np.ndarray]:
    """A tree on the rows with ``weight > 0`` (``X`` float32 ``(rows, predictors)``, ``order`` from :func:`presort`
    of the same ``X``); returns it and the leaf of every row (-1 for rows of weight 0). ``min_weight_leaf`` as
    scikit-learn's ``min_weight_fraction_leaf x sum(weight)``. None where numba is not installed."""
    kernel = compiled(_grow)
    if kernel is None:
        return None
    X = np.ascontiguousarray(X, dtype=np.float32)
    used = weight > 0
    # each predictor's order restricted to the rows in use, still sorted (stable: a filter keeps the order)
    sorted_rows = np.ascontiguousarray(order if used.all() else
                                       np.stack([o[used[o]] for o in order]), dtype=np.int64)
    n_nodes = 2 ** (max_depth + 1) - 1
    feature = np.full(n_nodes, -2, dtype=np.int64)
    threshold = np.full(n_nodes, -2.0)
    left = np.full(n_nodes, -1, dtype=np.int64)
    right = np.full(n_nodes, -1, dtype=np.int64)
    leaf_of = np.full(X.shape[0], -1, dtype=np.int64)
    count, depth = kernel(X, sorted_rows, np.asarray(y, dtype=np.float64), np.asarray(weight, dtype=np.float64),
                          max_depth, min_samples_leaf, float(min_weight_leaf), feature, threshold, left, right,
                          leaf_of, _FEATURE_THRESHOLD, _EPSILON)
    return Tree(feature[:count].copy(), threshold[:count].copy(), left[:count].copy(), right[:count].copy(),
                int(depth)), leaf_of


def _grow(X, rows, y, w, max_depth, min_leaf, min_weight_leaf, feature, threshold, left, right, leaf_of,
          feat_thr, eps):
    """The compiled builder of :func:`grow_tree`: a stack of nodes (start, end, depth, parent, is_left,
    impurity); ``rows[f, start:end]`` holds a node's rows in ascending order of predictor ``f``."""
    n_feat, n = rows.shape
    goes_left = np.zeros(X.shape[0], dtype=np.bool_)
    buf = np.empty(n, dtype=np.int64)
    stack = np.empty((2 * max_depth + 4, 4), dtype=np.int64)
    stack_imp = np.empty(2 * max_depth + 4)
    # root: its impurity (the weighted variance of y)
    w_tot = 0.0
    s_tot = 0.0
    q_tot = 0.0
    for i in range(n):
        r = rows[0, i]
        w_tot += w[r]
        s_tot += w[r] * y[r]
        q_tot += w[r] * y[r] * y[r]
    w_all = w_tot
    top = 0
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = 0, n, 0, -1
    stack_imp[0] = q_tot / w_tot - (s_tot / w_tot) ** 2
    parent_left = np.zeros(2 * max_depth + 4, dtype=np.bool_)
    count = 0
    depth_max = 0
    top = 1
    while top > 0:
        top -= 1
        start, end, depth, parent = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
        is_left = parent_left[top]
        impurity = stack_imp[top]
        node = count
        count += 1
        if parent >= 0:
            if is_left:
                left[parent] = node
            else:
                right[parent] = node
        if depth > depth_max:
            depth_max = depth
        w_node = 0.0
        s_node = 0.0
        for i in range(start, end):
            r = rows[0, i]
            w_node += w[r]
            s_node += w[r] * y[r]
        n_node = end - start
        is_leaf = (depth >= max_depth or n_node < 2 or n_node < 2 * min_leaf or w_node < 2 * min_weight_leaf
                   or impurity <= eps)
        best_f = -1
        n_left = 0
        best_proxy = -np.inf
        best_thr = 0.0
        if not is_leaf:
            for f in range(n_feat):
                lo = X[rows[f, start], f]
                hi = X[rows[f, end - 1], f]
                if hi <= lo + feat_thr:  # constant in this node
                    continue
                wl = 0.0
                sl = 0.0
                prev = lo
                for p in range(start + 1, end):
                    r = rows[f, p - 1]
                    wl += w[r]
                    sl += w[r] * y[r]
                    v = X[rows[f, p], f]
                    if v <= prev + feat_thr:  # a tie (within 1e-7): no split between them
                        prev = v
                        continue
                    prev_v = prev
                    prev = v
                    if p - start < min_leaf or end - p < min_leaf:
                        continue
                    wr = w_node - wl
                    if wl < min_weight_leaf or wr < min_weight_leaf:
                        continue
                    sr = s_node - sl
                    proxy = sl * sl / wl + sr * sr / wr
                    if proxy > best_proxy:
                        best_proxy = proxy
                        best_f = f
                        best_thr = np.float64(prev_v) / 2.0 + np.float64(v) / 2.0
            if best_f < 0:
                is_leaf = True
        if not is_leaf:
            # children's impurities and the improvement (scikit-learn's leaf rule: improvement + eps < 0)
            wl = 0.0
            sl = 0.0
            ql = 0.0
            wr = 0.0
            sr = 0.0
            qr = 0.0
            n_left = 0
            for i in range(start, end):
                r = rows[best_f, i]
                gl = np.float64(X[r, best_f]) <= best_thr
                goes_left[r] = gl
                if gl:
                    n_left += 1
                    wl += w[r]
                    sl += w[r] * y[r]
                    ql += w[r] * y[r] * y[r]
                else:
                    wr += w[r]
                    sr += w[r] * y[r]
                    qr += w[r] * y[r] * y[r]
            imp_l = ql / wl - (sl / wl) ** 2
            imp_r = qr / wr - (sr / wr) ** 2
            improvement = (w_node / w_all) * (impurity - wr / w_node * imp_r - wl / w_node * imp_l)
            if improvement + eps < 0.0:
                is_leaf = True
        if is_leaf:
            for i in range(start, end):
                leaf_of[rows[0, i]] = node
            continue
        feature[node] = best_f
        threshold[node] = best_thr
        # every predictor's order split stably into the children
        for f in range(n_feat):
            a = start
            b = 0
            for i in range(start, end):
                r = rows[f, i]
                if goes_left[r]:
                    rows[f, a] = r
                    a += 1
                else:
                    buf[b] = r
                    b += 1
            for i in range(b):
                rows[f, a + i] = buf[i]
        # right pushed first: the left child is grown (and numbered) first, as scikit-learn does
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = start + n_left, end, depth + 1, node
        parent_left[top] = False
        stack_imp[top] = imp_r
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = start, start + n_left, depth + 1, node
        parent_left[top] = True
        stack_imp[top] = imp_l
        top += 1
    return count, depth_max


__all__ = ["Tree", "grow_tree", "presort"]
