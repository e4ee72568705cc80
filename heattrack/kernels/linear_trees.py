"""Bagged regression trees with a ridge regression in every leaf, and a compiled predictor over a tile's pixels.

:class:`LinearLeafTreeEnsemble` is the model of the Data Mining Sharpener (:mod:`heattrack.kernels.dms`).
Fitting uses scikit-learn's trees, each grown on the distinct rows of its bootstrap sample weighted by their draws
(the same tree as on the repeated rows, from ~63 % of them); predicting a whole tile (:meth:`LinearLeafTreeEnsemble.predict_pixels`) walks
all trees of a pixel in one compiled loop (numba) that reads the band-major predictor stack directly: no
``(pixels, bands)`` copy, no per-tree index array, no gather of coefficient rows. Per pixel and tree it is the same
comparison as scikit-learn's own walk (a float32 predictor against the threshold, rounded down to float32: the same outcome), so the leaves are the
same; the sums may differ from :meth:`LinearLeafTreeEnsemble.predict` in the order of float32 additions (~1e-5 K).
Cost: per pixel and tree, one comparison and one pick per inner node (15 at depth 4, vectorised across pixels) and
bands + 1 additions: ~50 ms per padded 10 km tile (1.2 Mpx, 10 trees, 9 predictors; 100 ms walking down from the root
before 2026-12-06); the compile (~1 s) happens once per process and is cached on disk.
"""

from __future__ import annotations

import numpy as np

from heattrack.kernels.cart import Tree, grow_tree, presort
from heattrack.kernels.jit import compiled


class LinearLeafTreeEnsemble:
    """Bagged regression trees with a ridge regression in every leaf (the pyDMS / Cubist idea).

    A plain tree predicts a constant per leaf, so it cannot extrapolate: pure 10 m pixels lie outside the
    range of the mixed coarse pixels it was trained on. A linear model per leaf keeps the tree's
    partition (non-linear, land-cover specific) and extrapolates linearly like TsHARP does.
    scikit-learn estimator API: ``fit(X, y)``, ``predict(X)``, parameters in ``__init__``.
    """

    def __init__(self, n_estimators: int = 10, max_depth: int = 5, min_samples_leaf: int = 40,
                 alpha: float = 1e-3, extrapolation: float = 0.25, random_state: int = 0):
        self.n_estimators = n_estimators
        self.extrapolation = extrapolation
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LinearLeafTreeEnsemble":
        rng = np.random.default_rng(self.random_state)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0) + 1e-9
        lo, hi = X.min(axis=0), X.max(axis=0)
        self.x_lo_ = lo - self.extrapolation * (hi - lo)
        self.x_hi_ = hi + self.extrapolation * (hi - lo)
        Z = (X - self.mean_) / self.scale_
        self.y_range_ = (float(y.min()), float(y.max()))
        self.members_ = []
        n = y.size
        Z32 = np.ascontiguousarray(Z, dtype=np.float32)  # the trees split float32 predictors (as scikit-learn's)
        presorted = presort(Z32)  # once for every tree of the ensemble
        for _ in range(self.n_estimators):
            idx = rng.integers(0, n, n) if self.n_estimators > 1 else np.arange(n)
            seed = int(rng.integers(2**31))
            zb, yb = Z[idx], y[idx]
            # each tree is grown on the distinct rows of its bootstrap sample, weighted by how often each was drawn
            # (~63 % of the rows): weighted sums equal the sums over the repeated rows, and the smallest leaf is
            # counted in draws (integer weights: >= n - 0.5 is >= n). One tree on every row (the TsHARP-like
            # candidate) is the plain tree. Grown from the presorted predictors (:mod:`heattrack.kernels.cart`:
            # scikit-learn's tree to the bit, faster where predictor values differ; no scikit-learn import in a worker),
            # by scikit-learn without numba
            counts = np.bincount(idx, minlength=n)
            bagged = self.n_estimators > 1 and 2 * self.min_samples_leaf <= n  # (else no split is possible anyway)
            frac = (self.min_samples_leaf - 0.5) / n
            leaf_rows, leaf_weight = (1, frac * float(counts.sum())) if bagged else (self.min_samples_leaf, 0.0)
            grown = grow_tree(Z32, presorted, y, counts.astype(np.float64), self.max_depth, leaf_rows, leaf_weight,
                              random_state=seed)
            if grown is not None:
                tree, leaf_of = grown
                leaves = leaf_of[idx]  # the leaf of every drawn row, as the tree's apply gives it
            else:
                tree = Tree.from_sklearn(_sklearn_tree(Z, y, idx, counts, bagged, frac, self, seed))
                leaves = tree.apply(zb)
            coef = np.zeros((tree.node_count, Z.shape[1] + 1))
            # rows grouped by leaf with a stable sort: each leaf's rows are a contiguous slice, in the same order
            # (node numbers as 16-bit keys: NumPy's stable sort is then a radix sort, 5x faster, the same order)
            order = np.argsort(leaves.astype(np.uint16) if tree.node_count < 2**16 else leaves, kind="stable")
            A = np.hstack([np.ones((n, 1)), zb])[order]
            ys, ls = yb[order], leaves[order]
            starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
            stops = np.r_[starts[1:], n]
            eye = ridge_penalty(A.shape[1], 1.0)
            lhs = np.empty((starts.size, A.shape[1], A.shape[1]))
            rhs = np.empty((starts.size, A.shape[1]))
            for k, (a, b) in enumerate(zip(starts, stops)):
                As = A[a:b]
                lhs[k] = As.T @ As + self.alpha * (b - a) * eye
                rhs[k] = As.T @ ys[a:b]
            coef[ls[starts]] = np.linalg.solve(lhs, rhs[..., None])[..., 0]  # one batched LAPACK call
            # kept in float32 for predict: the trees walk float32 rows, and the gather is the inner loop
            self.members_.append((tree, coef.astype(np.float32)))
        self._packed = None
        return self

    def _output_range(self) -> tuple[float, float]:
        lo, hi = self.y_range_
        margin = self.extrapolation * (hi - lo)
        return lo - margin, hi + margin

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``X`` ``(n, predictors)`` (scikit-learn's tree walk, tree by tree)."""
        # pure fine pixels reach beyond the mixed coarse pixels seen in training: extrapolate linearly, but
        # only ``extrapolation`` x the training range of each predictor, and the result at most that far in LST
        f32 = np.float32
        X = np.clip(np.asarray(X, dtype=f32), self.x_lo_.astype(f32), self.x_hi_.astype(f32))
        # sklearn trees split in float32 and walk C-ordered rows: convert once here, not once per tree
        Z = np.ascontiguousarray((X - self.mean_.astype(f32)) / self.scale_.astype(f32))
        # the ensemble mean of linear leaf models is one linear model per row: sum the rows' leaf coefficients
        # over the trees (a gather per tree), then one dot product per row
        acc = np.zeros((Z.shape[0], Z.shape[1] + 1), dtype=f32)
        rows = np.empty_like(acc)
        for tree, coef32 in self.members_:
            # the fitted tree's own walk (without re-validating Z), then a gather into a reused buffer
            np.take(coef32, tree.apply(Z), axis=0, out=rows)
            acc += rows
        out = (acc[:, 0] + np.einsum("ij,ij->i", acc[:, 1:], Z)).astype(np.float64) / len(self.members_)
        return np.clip(out, *self._output_range())

    def _pack(self) -> tuple:
        """The trees as complete binary trees of the ensemble's depth ``D`` in heap order (children of node ``i``
        at ``2i + 1``, ``2i + 2``: the walk needs no child pointers), for the compiled walk. A leaf shallower than
        ``D`` becomes nodes that always go left (threshold +inf) down to depth ``D``; ``coef[t, j]`` is the leaf
        model at the ``j``-th node of depth ``D``."""
        if self._packed is None:
            depth = max(1, max(t.max_depth for t, _ in self.members_))
            nt, p1 = len(self.members_), self.members_[0][1].shape[1]
            inner = 2**depth - 1
            feat = np.zeros((nt, inner), dtype=np.int32)
            thr = np.full((nt, inner), np.inf, dtype=np.float32)
            coef = np.zeros((nt, 2**depth, p1), dtype=np.float32)
            for k, (tree, c) in enumerate(self.members_):
                thr32 = _float32_at_most(tree.threshold)
                todo = [(0, 0)]  # (scikit-learn node, heap node)
                while todo:
                    node, heap = todo.pop()
                    if heap >= inner:
                        coef[k, heap - inner] = c[node]
                        continue
                    if tree.children_left[node] < 0:  # a leaf above depth D: always left, down to depth D
                        todo.append((node, 2 * heap + 1))
                        continue
                    feat[k, heap], thr[k, heap] = tree.feature[node], thr32[node]
                    todo += [(tree.children_left[node], 2 * heap + 1), (tree.children_right[node], 2 * heap + 2)]
            f32 = np.float32
            self._packed = (self.x_lo_.astype(f32), self.x_hi_.astype(f32), self.mean_.astype(f32),
                            self.scale_.astype(f32), feat, thr, coef, int(depth))
        return self._packed

    def predict_pixels(self, stack: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Predictions (float32) for the pixels ``index`` of the band-major stack ``(predictors, pixels)``:
        :meth:`predict` of ``stack[:, index].T`` without building it (compiled; :meth:`predict` in chunks where
        numba is not installed)."""
        stack = np.ascontiguousarray(stack, dtype=np.float32)
        index = np.ascontiguousarray(index, dtype=np.int64)
        out = np.empty(index.size, dtype=np.float32)
        kernel = _compiled_walk()
        if kernel is None:
            for s in range(0, index.size, chunk := 65_536):  # bounded memory: (chunk, predictors) rows at a time
                out[s:s + chunk] = self.predict(stack[:, index[s:s + chunk]].T)
            return out
        y_lo, y_hi = self._output_range()
        kernel(stack, index, *self._pack(), float(y_lo), float(y_hi), out)
        return out


def ridge_penalty(n_coef: int, per_sample: float) -> np.ndarray:
    """The leaf models' ridge penalty on the normal equations of ``n_coef`` coefficients, the first an intercept that
    is not penalised: ``per_sample`` (alpha x rows) on the rest of the diagonal."""
    eye = np.eye(n_coef)
    eye[0, 0] = 0.0
    return per_sample * eye


def ridge_coefficients(A: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge coefficients for rows ``A`` ``(1 + predictors, samples)`` (first row the intercept): one model with the
    leaf models' penalty (alpha x samples, :func:`ridge_penalty`), for a single fit instead of their batch."""
    return np.linalg.solve(A @ A.T + ridge_penalty(A.shape[0], alpha * y.size), A @ y)


def _sklearn_tree(Z: np.ndarray, y: np.ndarray, idx: np.ndarray, counts: np.ndarray, bagged: bool, frac: float,
                  model: LinearLeafTreeEnsemble, seed: int):
    """The same tree grown by scikit-learn (where numba is not installed)."""
    from sklearn.tree import DecisionTreeRegressor

    if bagged:
        rows = np.flatnonzero(counts)
        return DecisionTreeRegressor(max_depth=model.max_depth, min_samples_leaf=1, min_weight_fraction_leaf=frac,
                                     random_state=seed).fit(Z[rows], y[rows],
                                                            sample_weight=counts[rows].astype(np.float64))
    return DecisionTreeRegressor(max_depth=model.max_depth, min_samples_leaf=model.min_samples_leaf,
                                 random_state=seed).fit(Z[idx], y[idx])


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 at most each float64 threshold: for a float32 ``x``, ``x <= t64`` exactly when
    ``x <= t32`` (scikit-learn compares float32 predictors with float64 thresholds)."""
    t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def _walk_rows(stack, index, x_lo, x_hi, mean, scale, feat, thr, coef, depth, y_lo, y_hi, out):
    """The compiled inner loop of :meth:`LinearLeafTreeEnsemble.predict_pixels`: the same standardised float32
    predictors, tree walks and float32 sums as :meth:`LinearLeafTreeEnsemble.predict`. Pixels go in blocks. For trees
    up to depth 5 each tree's leaves are found bottom-up, one node at a time across the block: a node on the deepest
    inner level holds its comparison's outcome (0 or 1), every node above takes its left child's value plus, where its
    own comparison goes right, the difference to its right child's value plus the leaves left of it — integer
    arithmetic on contiguous rows, no branch and no select, so that it vectorises (4x faster than a select on bytes,
    which did not; 2x faster than walking down from the root) — and the root's value is the leaf; deeper trees compare
    along a walk. Then each pixel adds its leaves' coefficient rows (contiguous) tree after tree, and its dot product
    with the predictors comes last, in the same order as before: the same sums to the bit."""
    p = stack.shape[0]
    n_trees = feat.shape[0]
    inner = feat.shape[1]
    block = 256
    z = np.empty((p, block), dtype=np.float32)
    acc = np.empty((block, p + 1), dtype=np.float32)
    below = np.empty((min(inner, 31), block), dtype=np.int32)  # the leaf within node k's subtree (depth <= 5)
    leaf = np.empty((n_trees, block), dtype=np.int32)
    for start in range(0, index.shape[0], block):
        nb = min(block, index.shape[0] - start)
        for j in range(p):
            lo, hi, m, sd = x_lo[j], x_hi[j], mean[j], scale[j]
            for b in range(nb):
                z[j, b] = (min(max(stack[j, index[start + b]], lo), hi) - m) / sd
        for t in range(n_trees):
            lt = leaf[t]
            if inner <= 31:
                for d in range(depth - 1, -1, -1):  # from the deepest inner level up to the root
                    first = (1 << d) - 1
                    half = np.int32(1 << (depth - d - 1))  # leaves under each child of a node of depth d
                    for k in range(first, 2 * first + 1):
                        zf, th, bk = z[feat[t, k]], thr[t, k], below[k]
                        if d == depth - 1:
                            for b in range(nb):
                                bk[b] = zf[b] > th
                        else:
                            bl, br = below[2 * k + 1], below[2 * k + 2]
                            for b in range(nb):
                                bk[b] = bl[b] + (zf[b] > th) * (half + br[b] - bl[b])
                for b in range(nb):
                    lt[b] = below[0, b]
            else:
                for b in range(nb):  # branch-free: which child is data, and noisy pixels defeat branch prediction
                    k = 0
                    for _ in range(depth):
                        k = 2 * k + 1 + np.int32(z[feat[t, k], b] > thr[t, k])
                    lt[b] = k - inner
        acc[:nb, :] = 0
        for t in range(n_trees):
            for b in range(nb):
                row = coef[t, leaf[t, b]]
                for j in range(p + 1):
                    acc[b, j] += row[j]
        for b in range(nb):
            v = acc[b, 0]
            for j in range(p):
                v += acc[b, j + 1] * z[j, b]
            out[start + b] = min(max(np.float64(v) / n_trees, y_lo), y_hi)


def _compiled_walk():
    """:func:`_walk_rows` compiled by numba (cached on disk), or None where numba is not installed."""
    return compiled(_walk_rows)


__all__ = ["LinearLeafTreeEnsemble", "ridge_coefficients", "ridge_penalty"]
