#!/usr/bin/env bash
# Screenshots of the HTML drift report and the rendered notebooks in headless Chromium, to look at
# before calling a report change done (`make screenshots`; not part of `make test`). Each is of
# the whole page, however long (scripts/fullpage.py), not of a window's worth.
# Usage: scripts/screenshots.sh OUT_DIR PAGE.html...   Writes OUT_DIR/<page>-<width>.png.
set -euo pipefail

out=$1
shift
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "screenshots: installing Chromium from Debian's packages (apt-get install chromium)" >&2
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
        browser=$(command -v chromium)
    else
        echo "screenshots: Chromium is missing; install it (Debian: sudo apt-get install chromium)" >&2
        exit 2
    fi
fi

mkdir -p "$out"
for page in "$@"; do
    [ -f "$page" ] || { echo "screenshots: no such page: $page" >&2; exit 2; }
    name=$(basename "$page" .html)
    # A wide desktop window and a narrow one: tables must fit both.
    for width in 1280 800; do
        "${PYTHON:-python3}" "$(dirname "$0")/fullpage.py" "$browser" "$width" "$page" \
            "$out/$name-$width.png"
        echo "$out/$name-$width.png"
    done
done
