"""Regression trees (CART, squared error) grown from presorted predictors: scikit-learn's best-split trees, the same
to the bit, without a sort at every node where the values allow.

scikit-learn's ``DecisionTreeRegressor`` sorts a node's rows by every predictor at every node: 17 ms for a depth-4
tree on ~6,000 rows and 9 predictors, most of the Data Mining Sharpener's fit (10 trees per model, 2 models per
tile). Here the rows are sorted once per predictor for the ensemble (:func:`presort`) and a tree keeps each
predictor's order within every node by a stable partition at each split: where a node's values of a predictor all
differ, that is the order any sort gives, at O(rows) per predictor and node (2.6–5 ms for that tree). Everything else
is scikit-learn's, step for step, so that the trees are the same node for node and every sum the same to the bit
(``tests/test_kernels_dms.py``; the held-out family re-runs byte-identical): its random predictor order (the xorshift
``rand_r`` seeded from ``random_state``) and constant-predictor bookkeeping, the node's sample order (sorted by the
last predictor examined, then partitioned by swaps), its running sums (forward, or back from the end where shorter),
its leaf rules and the threshold halfway between two float32 values; where some values in a node are equal, its
``introsort_3way`` is run as it runs (:mod:`heattrack.kernels.sklearn_sort`, tested against scikit-learn's own
sort), because the order of equal values decides the order of the sums — only its partitions on the way to the equal
values, the rest of the order taken from the presorted rows (the same rows in the same places; 10 trees on 9,500
coarse cells, whose float32 predictors collide by chance, 0.16–0.18 → 0.11–0.14 s). An exact tie between two
predictors (mirrored ones split the rows the same way) then goes where scikit-learn sends it: taking the first
predictor instead had flipped a tile's guard from DMS to TsHARP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heattrack.kernels.jit import compiled
from heattrack.kernels.sklearn_sort import introsort3_ties

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
              min_samples_leaf: int, min_weight_leaf: float, random_state: int = 0) -> tuple[Tree, np.ndarray] | None:
    """The tree scikit-learn's ``DecisionTreeRegressor(max_depth, min_samples_leaf, min_weight_fraction_leaf,
    random_state)`` grows on the rows with ``weight > 0`` (``X`` float32 ``(rows, predictors)``, ``order`` from
    :func:`presort` of the same ``X``; ``min_weight_leaf`` = ``min_weight_fraction_leaf x sum(weight)``); returns it
    and the leaf of every row (-1 for rows of weight 0). None where numba is not installed."""
    kernel = compiled(_grow)
    if kernel is None:
        return None
    X = np.ascontiguousarray(X, dtype=np.float32)
    used = weight > 0
    # each predictor's order restricted to the rows in use, still sorted (stable: a filter keeps the order)
    sorted_rows = np.ascontiguousarray(order if used.all() else np.stack([o[used[o]] for o in order]),
                                       dtype=np.int64)
    n_nodes = 2 ** (max_depth + 1) - 1
    feature = np.full(n_nodes, -2, dtype=np.int64)
    threshold = np.full(n_nodes, -2.0)
    left = np.full(n_nodes, -1, dtype=np.int64)
    right = np.full(n_nodes, -1, dtype=np.int64)
    leaf_of = np.full(X.shape[0], -1, dtype=np.int64)
    # scikit-learn's splitter draws its feature order from a xorshift state seeded by the tree's random_state
    state = np.array([np.random.RandomState(random_state).randint(0, _RAND_R_MAX)], dtype=np.uint32)
    count, depth = kernel(X, sorted_rows, np.flatnonzero(used).astype(np.int64), np.asarray(y, dtype=np.float64),
                          np.asarray(weight, dtype=np.float64), max_depth, min_samples_leaf, float(min_weight_leaf),
                          feature, threshold, left, right, leaf_of, _FEATURE_THRESHOLD, _EPSILON, state)
    return Tree(feature[:count].copy(), threshold[:count].copy(), left[:count].copy(), right[:count].copy(),
                int(depth)), leaf_of


_RAND_R_MAX = 2147483647


def _rand_int(low, high, state):
    """scikit-learn's ``rand_int`` (``our_rand_r``: xorshift on a uint32 state, modulo 2^31)."""
    s = state[0]
    if s == 0:
        s = np.uint32(1)
    s ^= np.uint32(s << np.uint32(13))
    s ^= np.uint32(s >> np.uint32(17))
    s ^= np.uint32(s << np.uint32(5))
    state[0] = s
    return low + np.int64(s % np.uint32(2147483648)) % (high - low)


def _update(samp, w, y, end, pos, new_pos, sl, wl, s_tot, w_node):
    """scikit-learn's ``criterion.update``: the left sums moved from ``pos`` to ``new_pos`` along ``samp``, forward, or
    back from the end (starting from the node's totals) where that is shorter; returns (sum of w*y, sum of w)."""
    if new_pos - pos <= end - new_pos:
        for q in range(pos, new_pos):
            r = samp[q]
            sl += w[r] * y[r]
            wl += w[r]
    else:
        sl = s_tot
        wl = w_node
        for q in range(end - 1, new_pos - 1, -1):
            r = samp[q]
            sl -= w[r] * y[r]
            wl -= w[r]
    return sl, wl


_draw = compiled(_rand_int) or _rand_int  # called from the compiled builder: compiled too
_update = compiled(_update) or _update


def _grow(X, rows, samp, y, w, max_depth, min_leaf, min_weight_leaf, feature, threshold, left, right, leaf_of,
          feat_thr, eps, state):
    """The compiled builder of :func:`grow_tree`, step for step scikit-learn's depth-first builder and best splitter:
    the same random feature order (and constant-feature bookkeeping), the same sample order in every node (``samp``:
    sorted by the last predictor examined, then partitioned by swaps), the same running sums (forward, or back from
    the end where that is shorter), so the same proxies to the bit and the same choice among tied splits. Sorting is
    replaced by ``rows[f, start:end]``, the node's rows in ascending order of predictor ``f`` (the order any sort gives
    where the values differ); where some are equal, scikit-learn's introsort is run as it runs on the parts that hold
    them (:func:`introsort3_ties`).
    """
    n_feat, n = rows.shape
    goes_left = np.zeros(X.shape[0], dtype=np.bool_)
    tied_row = np.zeros(X.shape[0], dtype=np.uint8)
    buf = np.empty(n, dtype=np.int64)
    ordr = np.empty(n, dtype=np.int64)
    vals = np.empty(n, dtype=np.float32)
    features = np.arange(n_feat)
    constant = np.zeros(n_feat, dtype=np.int64)
    cap = 2 * max_depth + 4
    stack = np.empty((cap, 6), dtype=np.int64)  # start, end, depth, parent, is_left, n_constant
    stack_imp = np.empty(cap)
    w_all = 0.0
    for i in range(n):
        w_all += w[samp[i]]
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3], stack[0, 4], stack[0, 5] = 0, n, 0, -1, 0, 0
    stack_imp[0] = np.inf
    top = 1
    count = 0
    depth_max = 0
    first = True
    while top > 0:
        top -= 1
        start, end, depth, parent = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
        is_left, n_known = stack[top, 4], stack[top, 5]
        impurity = stack_imp[top]
        node = count
        count += 1
        if parent >= 0:
            if is_left == 1:
                left[parent] = node
            else:
                right[parent] = node
        if depth > depth_max:
            depth_max = depth
        w_node = 0.0
        s_tot = 0.0
        q_tot = 0.0
        for i in range(start, end):  # criterion.init: the node's samples in their current order
            r = samp[i]
            wy = w[r] * y[r]
            s_tot += wy
            q_tot += wy * y[r]
            w_node += w[r]
        n_node = end - start
        is_leaf = (depth >= max_depth or n_node < 2 or n_node < 2 * min_leaf or w_node < 2 * min_weight_leaf)
        if first:
            impurity = q_tot / w_node - (s_tot / w_node) ** 2.0
            first = False
        is_leaf = is_leaf or impurity <= eps
        best_f = -1
        best_pos = end
        best_thr = 0.0
        imp_l = 0.0
        imp_r = 0.0
        n_total = n_known
        if not is_leaf:
            best_proxy = -np.inf
            f_i = n_feat
            n_visited = 0
            n_found = 0
            n_drawn = 0
            while f_i > n_total and (n_visited < n_feat or n_visited <= n_found + n_drawn):
                n_visited += 1
                f_j = _draw(n_drawn, f_i - n_found, state)
                if f_j < n_known:
                    t = features[n_drawn]
                    features[n_drawn] = features[f_j]
                    features[f_j] = t
                    n_drawn += 1
                    continue
                f_j += n_found
                f = features[f_j]
                # scikit-learn sorts the node's samples by f in place: where the values differ that is f's presorted
                # order; where some are equal, its introsort decides their order (from the samples' current order)
                tied = False
                for i in range(start + 1, end):  # the rows whose value another row of the node shares, marked
                    if X[rows[f, i], f] == X[rows[f, i - 1], f]:
                        tied = True
                        tied_row[rows[f, i]] = 1
                        tied_row[rows[f, i - 1]] = 1
                if tied:
                    for i in range(start, end):
                        vals[i - start] = X[samp[i], f]
                        ordr[i - start] = samp[i]
                    introsort3_ties(vals[: end - start], ordr[: end - start], tied_row, rows[f, start:end])
                    for i in range(start, end):
                        tied_row[rows[f, i]] = 0
                else:
                    for i in range(start, end):
                        ordr[i - start] = rows[f, i]
                for i in range(start, end):
                    samp[i] = ordr[i - start]
                if X[samp[end - 1], f] <= X[samp[start], f] + feat_thr:  # constant in this node
                    t = features[f_j]
                    features[f_j] = features[n_total]
                    features[n_total] = t
                    n_found += 1
                    n_total += 1
                    continue
                f_i -= 1
                t = features[f_i]
                features[f_i] = features[f_j]
                features[f_j] = t
                pos = start
                sl = 0.0
                wl = 0.0
                p = start
                while p < end:
                    p += 1
                    while p < end and X[samp[p], f] <= X[samp[p - 1], f] + feat_thr:
                        p += 1
                    if p == end:
                        continue
                    if p - start < min_leaf or end - p < min_leaf:
                        continue
                    sl, wl = _update(samp, w, y, end, pos, p, sl, wl, s_tot, w_node)
                    pos = p
                    wr = w_node - wl
                    sr = s_tot - sl
                    if wl < min_weight_leaf or wr < min_weight_leaf:
                        continue
                    proxy = sl * sl / wl + sr * sr / wr
                    if proxy > best_proxy:
                        best_proxy = proxy
                        best_f = f
                        best_pos = p
                        best_thr = np.float64(X[samp[p - 1], f]) / 2.0 + np.float64(X[samp[p], f]) / 2.0
            if best_pos < end:
                a = start
                b = end
                while a < b:  # partition_samples_final: swaps from both ends
                    if np.float64(X[samp[a], best_f]) <= best_thr:
                        a += 1
                    else:
                        b -= 1
                        t = samp[a]
                        samp[a] = samp[b]
                        samp[b] = t
                sl, wl = _update(samp, w, y, end, start, best_pos, 0.0, 0.0, s_tot, w_node)
                wr = w_node - wl
                sr = s_tot - sl
                ql = 0.0
                for q in range(start, best_pos):
                    r = samp[q]
                    ql += w[r] * y[r] * y[r]
                imp_l = ql / wl - (sl / wl) ** 2.0
                imp_r = (q_tot - ql) / wr - (sr / wr) ** 2.0
                improvement = (w_node / w_all) * (impurity - (wr / w_node * imp_r) - (wl / w_node * imp_l))
                is_leaf = improvement + eps < 0.0
            else:
                is_leaf = True
            for i in range(n_known):  # the known constants keep their order for siblings and children
                features[i] = constant[i]
            for i in range(n_known, n_total):
                constant[i] = features[i]
        if is_leaf:
            for i in range(start, end):
                leaf_of[samp[i]] = node
            continue
        feature[node] = best_f
        threshold[node] = best_thr
        n_left = best_pos - start
        for i in range(start, end):
            r = samp[i]
            goes_left[r] = i < best_pos
        for f in range(n_feat):  # every predictor's order split stably into the children
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
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = (
            start + n_left, end, depth + 1, node, 0, n_total)
        stack_imp[top] = imp_r
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = (
            start, start + n_left, depth + 1, node, 1, n_total)
        stack_imp[top] = imp_l
        top += 1
    return count, depth_max


__all__ = ["Tree", "grow_tree", "presort"]
