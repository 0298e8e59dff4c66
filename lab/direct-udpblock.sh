#!/usr/bin/env bash
# The direct path, scenario "udpblock" (see lab/direct.sh).
exec "$(dirname "$0")/direct.sh" udpblock "$@"
