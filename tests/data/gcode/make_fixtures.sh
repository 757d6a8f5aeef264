#!/bin/sh
# Regenerates the slicer fixtures in this folder from tests/data/models/*.stl; see README.md.
# Run from the repository root: sh tests/data/gcode/make_fixtures.sh
set -eu
HERE=tests/data/gcode
MODELS=tests/data/models
CURA=var/cura/usr/share/cura/resources
export CURA_ENGINE_SEARCH_PATH="$CURA/definitions:$CURA/extruders"
# Cura's own front end fills {machine_depth} in the Ender-3 end G-code; CuraEngine does not, so
# the end G-code is given with fabnet's creality_ender3 depth (220 mm) filled in.
CURA_END=$(printf 'G91 ;Relative positioning\nG1 E-2 F2700 ;Retract a bit\nG1 E-2 Z0.2 F2400 ;Retract and raise Z\nG1 X5 Y5 F3000 ;Wipe out\nG1 Z10 ;Raise Z more\nG90 ;Absolute positioning\n\nG1 X0 Y220 ;Present print\nM106 S0 ;Turn-off fan\nM104 S0 ;Turn-off hotend\nM140 S0 ;Turn-off bed\n\nM84 X Y E ;Disable all steppers but Z')
for model in cube_xyz_20mm extruder_idler; do
  prusa-slicer --export-gcode --load "$HERE/prusaslicer_mk3s.ini" --center 100,100 \
    -o "$HERE/${model}_prusaslicer.gcode" "$MODELS/$model.stl" > /dev/null 2>&1
  slic3r --load "$HERE/slic3r_mk3s.ini" --print-center 100,100 \
    -o "$HERE/${model}_slic3r.gcode" "$MODELS/$model.stl" > /dev/null 2>&1
  # CuraEngine ignores the "value" formulas of the definitions, so derived settings are given
  # explicitly; with -v it prints its estimates to stderr.
  CuraEngine slice -v -j "$CURA/definitions/creality_ender3.def.json" \
    -s layer_height=0.2 -s layer_height_0=0.2 -s wall_line_count=2 \
    -s top_layers=5 -s bottom_layers=4 -s infill_sparse_density=15 \
    -s infill_line_distance=5.333 -s material_print_temperature_layer_0=215 \
    -s material_print_temperature=215 -s material_bed_temperature=60 \
    -s material_bed_temperature_layer_0=60 -s material_diameter=1.75 \
    -s speed_print=50 -s speed_travel=150 -s center_object=true -s adhesion_type=skirt \
    -s machine_end_gcode="$CURA_END" \
    -l "$MODELS/$model.stl" -o "$HERE/${model}_cura.gcode" 2> "/tmp/${model}_cura.log"
  grep -q "^;LAYER:0" "$HERE/${model}_cura.gcode" || { echo "CuraEngine sliced nothing: $model" >&2; exit 1; }
  grep -E "^(Print time \(s\)|Filament \(mm\^3\)):" "/tmp/${model}_cura.log" > "$HERE/${model}_cura.estimate"
done
gzip -9 -n -f "$HERE"/*.gcode
python3 "$HERE/expected.py" > "$HERE/expected.json"
