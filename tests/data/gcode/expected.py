"""Writes expected.json: each slicer's own filament (mm, g) and time estimate for each fixture.

PrusaSlicer: its ``; filament used [mm]/[g]`` and ``; estimated printing time (normal mode)``
comments. Slic3r 1.3: ``; filament used = Lmm (Vcm3)``; grams = L x filament area x 1.24 g/cm³.
CuraEngine 4.13: ``Filament (mm^3)`` and ``Print time (s)`` from its -v stderr (the
``*_cura.estimate`` files); length = volume / filament area, grams = volume x 1.24 g/cm³.
"""

import gzip
import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
AREA_MM2 = math.pi * (1.75 / 2) ** 2
DENSITY = 1.24


def hms(text: str) -> float:
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dhms])", text)))


def main() -> None:
    out = {}
    for path in sorted(HERE.glob("*.gcode.gz")):
        text = gzip.decompress(path.read_bytes()).decode()
        name = path.name.removesuffix(".gcode.gz")
        entry: dict[str, float] = {}
        if name.endswith("_prusaslicer"):
            entry["filament_mm"] = float(re.search(r"; filament used \[mm\] = ([\d.]+)", text)[1])
            entry["grams"] = float(re.search(r"; filament used \[g\] = ([\d.]+)", text)[1])
            time = re.search(r"; estimated printing time \(normal mode\) = (.+)", text)[1]
            entry["time_s"] = hms(time)
        elif name.endswith("_slic3r"):
            mm = float(re.search(r"; filament used = ([\d.]+)mm", text)[1])
            entry["filament_mm"] = mm
            entry["grams"] = round(mm * AREA_MM2 / 1000 * DENSITY, 3)
        elif name.endswith("_cura"):
            est = (HERE / f"{name}.estimate").read_text()
            volume = float(re.search(r"Filament \(mm\^3\): ([\d.]+)", est)[1])
            entry["filament_mm"] = round(volume / AREA_MM2, 2)
            entry["grams"] = round(volume / 1000 * DENSITY, 3)
            entry["time_s"] = float(re.search(r"Print time \(s\): ([\d.]+)", est)[1])
        out[path.name] = entry
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


main()
