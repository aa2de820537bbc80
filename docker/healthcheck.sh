#!/bin/sh
# HEALTHCHECK of the lockmesh image: `lockmesh status --check` (docs/cli.md): healthy when the
# node answers on its socket and serves locks now (a mesh node in a cluster, with a leader, a
# valid session lease and a disk that is not full). A node still forming its cluster
# (--expect), cut off from every leader, or on a full disk is not healthy. One line of output
# for `docker inspect`; Docker reads exit 1 as unhealthy (and reserves 2), so every failure,
# including "no node" (94), is reported as 1.
/usr/local/bin/lockmesh status --check 2>&1 || exit 1
