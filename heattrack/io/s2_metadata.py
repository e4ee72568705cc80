"""Sentinel-2 L2A metadata of a local granule: its BOA offset (processing baseline 04.00 and later subtract 1000 from
every DN) and sensing date, from ``MTD_MSIL2A.xml``, a STAC item ``*.json`` or the file names, else from the dates."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path

from heattrack.kernels.calibrate import s2_boa_offset_for_baseline

log = logging.getLogger(__name__)

_S2_DATE = re.compile(r"(20\d{6})T\d{6}")
_S2_BASELINE_NAME = re.compile(r"_N(\d{2})(\d{2})_")
#: the first day of processing baseline 04.00 (the BOA offset of -1000)
BASELINE_04_START = date(2022, 1, 25)


def parse_date(text: str) -> date | None:
    """``YYYYMMDD`` -> date (None where it is not one)."""
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _s2_metadata(folder: Path, files: list[Path]) -> tuple[float | None, str | None, date | None]:
    """BOA offset, its source and the sensing date from MTD xml, a STAC item or the file names."""
    offset, source, when = None, None, None
    for xml in dict.fromkeys([*sorted(folder.rglob("MTD_MSIL2A.xml")), *sorted(folder.glob("*.xml"))]):
        text = xml.read_text(errors="ignore")
        offs = re.findall(r"<BOA_ADD_OFFSET[^>]*>\s*(-?\d+(?:\.\d+)?)\s*<", text)
        if offs:
            offset, source = float(offs[0]), f"{xml.name} BOA_ADD_OFFSET"
        elif (m := re.search(r"<PROCESSING_BASELINE>\s*([\d.]+)\s*<", text)):
            offset, source = s2_boa_offset_for_baseline(m.group(1)), f"{xml.name} baseline {m.group(1)}"
        if (m := re.search(r"<(?:PRODUCT_START_TIME|SENSING_TIME)>\s*(\d{4})-(\d{2})-(\d{2})", text)):
            when = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    for js in sorted(folder.rglob("*.json")):
        try:
            props = json.loads(js.read_text()).get("properties", {})
        except (json.JSONDecodeError, AttributeError):
            continue
        if offset is None:
            base = props.get("s2:processing_baseline") or props.get("processing:version")
            if base is not None:
                offset, source = s2_boa_offset_for_baseline(str(base)), f"{js.name} baseline {base}"
        if when is None and isinstance(props.get("datetime"), str):
            when = parse_date(props["datetime"][:10].replace("-", ""))
    names = " ".join(p.name for p in files)
    if offset is None and (m := _S2_BASELINE_NAME.search(names)):
        base = f"{m.group(1)}.{m.group(2)}"
        offset, source = s2_boa_offset_for_baseline(base), f"file name baseline {base}"
    if when is None and (m := _S2_DATE.search(names)):
        when = parse_date(m.group(1))
    return offset, source, when


def s2_offset_and_date(folder: Path, files: list[Path], landsat_date: date | None) -> tuple[float, str, date | None]:
    """The granule's BOA offset, where it was taken from, and its sensing date (None: not found). Without baseline
    metadata the offset follows the sensing date, else the Landsat date of the pair (a pair is days apart; the
    baseline changed once, on 2022-01-25), else 0; each fallback logged."""
    offset, source, s2_date = _s2_metadata(folder, files)
    if offset is None:
        if s2_date is not None:
            offset = -1000.0 if s2_date >= BASELINE_04_START else 0.0
            source = f"sensing date {s2_date} (no baseline metadata)"
        elif landsat_date is not None:
            offset = -1000.0 if landsat_date >= BASELINE_04_START else 0.0
            source = f"the Landsat date {landsat_date} (no Sentinel-2 baseline metadata or date)"
        else:
            offset, source = 0.0, "default 0 (no baseline metadata, no date)"
        log.warning("Sentinel-2 BOA offset %s taken from %s", offset, source)
    return float(offset), str(source), s2_date


__all__ = ["BASELINE_04_START", "parse_date", "s2_offset_and_date"]
