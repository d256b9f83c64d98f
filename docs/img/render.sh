#!/bin/sh
# render.sh regenerates the diagrams of docs/ from their Graphviz sources:
# every docs/img/NAME.dot becomes docs/img/NAME.svg. Run it after editing a
# .dot file and commit both. It needs Graphviz's dot (Debian and Ubuntu:
# apt-get install graphviz).
#
#	docs/img/render.sh            write the SVGs
#	docs/img/render.sh -png DIR   also write PNGs to DIR, to look at the
#	                              pictures; do not commit them
set -eu
cd "$(dirname "$0")"
png=""
if [ "${1:-}" = "-png" ]; then
	png=${2:?usage: render.sh [-png DIR]}
	mkdir -p "$png"
fi
for f in *.dot; do
	dot -Tsvg "$f" -o "${f%.dot}.svg"
	if [ -n "$png" ]; then
		dot -Tpng "$f" -o "$png/${f%.dot}.png"
	fi
done
