"""scikit-learn's sort of a tree node's samples (``simultaneous_sort`` with the 3-way partition: introsort with a
median-of-3 pivot, heapsort past the depth limit, insertion sort below 16), ported for the compiled tree growth of
:mod:`heattrack.kernels.cart`: where a node holds equal predictor values, the order this sort leaves them in decides
the order of the split search's sums, so it is run as scikit-learn runs it (tested against its own sort).
"""

from __future__ import annotations

import numpy as np

from heattrack.kernels.jit import compiled


def introsort3_ties(values, idx, tied, sorted_idx):
    """scikit-learn's ``simultaneous_sort`` with ``use_three_way_partition`` (introsort: median-of-3 pivot, 3-way
    partition, heapsort past the depth limit, insertion sort below 16; its recursion on the left part is a stack here:
    the parts do not overlap, the same swaps) of ``values`` and the rows ``idx``, where only the order of equal values is
    not known beforehand: ``tied[r]`` is 1 for the rows ``r`` whose value another row of ``idx`` shares, ``sorted_idx``
    the rows in ascending order of value (any order where values differ: there it is the only one). Every part of the
    array is a whole range of values, so a part without a tied row ends sorted whatever the sort does in it: such parts
    are not sorted here (the 3-way partition counts the tied rows that go to each side), and at the end every position
    not holding a tied row takes ``sorted_idx``'s row. ``idx`` is then the full sort's result (``values`` is left partly
    unsorted where no row ties), at the cost of the partitions on the way to the equal values only; with every row
    tied it is the full sort (:func:`introsort3`)."""
    n_all = values.shape[0]
    if n_all == 0:
        return
    stack = np.empty((256, 3), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2] = 0, n_all, 2 * np.int64(np.log2(np.float64(n_all)))
    top = 1
    while top > 0:
        top -= 1
        off, n, maxd = stack[top, 0], stack[top, 1], stack[top, 2]
        heaped = False
        done = False
        while n > 15:
            if maxd <= 0:
                _heapsort(values, idx, off, n)
                heaped = True
                break
            maxd -= 1
            a, b, c = values[off], values[off + n // 2], values[off + n - 1]
            if a < b:
                pivot = b if b < c else (c if a < c else a)
            elif b < c:
                pivot = a if a < c else c
            else:
                pivot = b
            i = 0
            lo = 0
            r = n
            t_lo = 0
            t_hi = 0
            while i < r:
                v = values[off + i]
                if v < pivot:
                    t_lo += tied[idx[off + i]]
                    values[off + i], values[off + lo] = values[off + lo], values[off + i]
                    idx[off + i], idx[off + lo] = idx[off + lo], idx[off + i]
                    i += 1
                    lo += 1
                elif v > pivot:
                    r -= 1
                    t_hi += tied[idx[off + i]]
                    values[off + i], values[off + r] = values[off + r], values[off + i]
                    idx[off + i], idx[off + r] = idx[off + r], idx[off + i]
                else:
                    i += 1
            if t_lo > 0:
                stack[top, 0], stack[top, 1], stack[top, 2] = off, lo, maxd
                top += 1
            if t_hi == 0:
                done = True
                break
            off += r
            n -= r
        if not heaped and not done:
            for i in range(off + 1, off + n):  # insertion sort
                tv, ti = values[i], idx[i]
                j = i
                while j > off and values[j - 1] > tv:
                    values[j], idx[j] = values[j - 1], idx[j - 1]
                    j -= 1
                values[j], idx[j] = tv, ti
    for i in range(n_all):
        if tied[idx[i]] == 0:
            idx[i] = sorted_idx[i]


def _heapsort(values, idx, off, n):
    """scikit-learn's ``heapsort`` (with ``sift_down``) of ``values[off:off + n]``."""
    start = (n - 2) // 2
    end = n
    while True:
        _sift_down(values, idx, off, start, end)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        values[off], values[off + end] = values[off + end], values[off]
        idx[off], idx[off + end] = idx[off + end], idx[off]
        _sift_down(values, idx, off, 0, end)
        end -= 1


def _sift_down(values, idx, off, start, end):
    root = start
    while True:
        child = root * 2 + 1
        m = root
        if child < end and values[off + m] < values[off + child]:
            m = child
        if child + 1 < end and values[off + m] < values[off + child + 1]:
            m = child + 1
        if m == root:
            break
        values[off + root], values[off + m] = values[off + m], values[off + root]
        idx[off + root], idx[off + m] = idx[off + m], idx[off + root]
        root = m


_sift_down = compiled(_sift_down) or _sift_down
_heapsort = compiled(_heapsort) or _heapsort
introsort3_ties = compiled(introsort3_ties) or introsort3_ties


def introsort3(values: np.ndarray, idx: np.ndarray) -> None:
    """scikit-learn's ``simultaneous_sort`` with the 3-way partition of ``values`` and ``idx`` (int64) in place, in
    full: equal values left in the order that algorithm leaves them."""
    tied = np.ones(int(idx.max()) + 1 if idx.size else 1, dtype=np.uint8)
    introsort3_ties(values, idx, tied, idx.copy())


__all__ = ["introsort3", "introsort3_ties"]
