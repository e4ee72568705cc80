"""The ``changes`` section of the configuration: how ``heattrack screen`` compares a season with the previous one."""

from __future__ import annotations

from pydantic import Field

from heattrack.config_compute import Section as _Section


class ChangesConfig(_Section):
    """`heattrack screen`: how a season is compared with the previous one (not part of the processing hash).
    A segment is *flagged* when its risk >= risk_threshold with clear data on >= min_dates date pairs."""

    fdr_q: float = Field(0.05, gt=0, lt=1, description="Segments ranked by a statistic (detect.method residual "
                         "or baseline): Benjamini-Hochberg false-discovery rate for flagging a segment in a season "
                         "(and, against a previous season without point values, for calling a change).")
    new_z: float = Field(5.5, gt=0, description="Segments ranked by a statistic: how far (network z: median and "
                         "MAD of all segments) a segment's largest point warming (cooling) between the seasons must "
                         "stand out to call it new (resolved), at most; a season's threshold is lower where "
                         "false_new_per_100km says so. 5.5: the most new leaks found on the simulator family's "
                         "tuning members while their pooled false new stayed within half the budget of 1 per 100 km "
                         "of pipe (docs/measurements.md, 'Change classes').")
    false_new_per_100km: float = Field(0.25, ge=0, description="Segments ranked by a statistic: a season's "
                                       "threshold is the lower of new_z and the network z above which the fitted "
                                       "upper tail of this network's warming (the bulk of its segments, "
                                       "kernels/null_tail.py) expects this many segments per 100 km of pipe: a "
                                       "network whose warming has a light tail gets a lower threshold. 0.25 (a "
                                       "quarter of the budget of 1 per 100 km): the largest rate that kept every "
                                       "tuning set's pooled false new within half the budget (docs/measurements.md, "
                                       "'Change classes'); 0: new_z alone.")
    min_change_k: float = Field(0.5, ge=0, description="Segments ranked by a statistic: the smallest warming "
                                "(cooling) in K that can be called new (resolved), whatever the network's spread. "
                                "Two near-identical seasons (the same scene twice, a rerun) have a tiny spread, where "
                                "new_z alone called 0.13 K a new leak; Landsat's ST accuracy is ~0.5 K. Below every "
                                "threshold of the default ranking on the simulated winters measured (0.67-1.18 K); "
                                "the baseline's change classes moved (docs/measurements.md); 0: none.")
    warming_sigma_m: float = Field(30.0, ge=0, description="Segments ranked by a statistic: the point changes "
                                   "between the seasons are smoothed over the network with a Gaussian of this "
                                   "sigma (m) before a segment's largest warming is taken (the thermal footprint's "
                                   "scale; 0: not smoothed).")
    risk_threshold: float = Field(0.5, gt=0, le=1, description="Hotspot risk (and segment risk of the 0-1 risk "
                                  "rankings) that flags it (0-1).")
    min_dates: int = Field(1, ge=1, description="Clear date pairs a segment needs before it can be flagged or "
                           "called resolved.")
    hotspot_match_m: float = Field(60.0, gt=0, description="Hotspots of two seasons closer than this are the "
                                   "same place (m).")
