"""Render the configuration reference (docs/configuration.md) from the Config model itself."""

from __future__ import annotations

from heattrack.config import Config


def config_reference() -> str:
    lines = ["# Configuration reference", "",
             "Generated from `heattrack/config.py` by `heattrack config --reference` (a test keeps it in sync).",
             "Precedence: defaults < YAML file (`--config`) < `HEATTRACK_SECTION__KEY` environment variables "
             "< CLI flags and `--set section.key=value`. The resolved configuration is written to "
             "`OUT/config.yaml` by every run.", ""]
    for name, field in Config.model_fields.items():
        section = field.annotation
        if not hasattr(section, "model_fields"):
            lines += [f"## `{name}`", "", f"Default `{field.default}`.", ""]
            continue
        lines += [f"## `{name}`", "", (section.__doc__ or "").strip(), "", "| key | default | meaning |",
                  "|---|---|---|"]
        for key, f in section.model_fields.items():
            default = f.default
            desc = (f.description or "").replace("|", "\\|")
            lines.append(f"| `{name}.{key}` | `{default}` | {desc} |")
        lines.append("")
    return "\n".join(lines)
