#!/usr/bin/env bash
# Bazel's disk cache for ./test.sh and bazel/python_matrix.sh: compiled
# objects are kept outside the tree and shared by every checkout and output
# base on this machine, so a fresh clone compiles only what changed. Under
# CI (CI set) test results are never taken from a cache: every test runs.
# Files not read for 14 days are removed, so the cache does not grow
# without bound. Sourced; sets EI_BAZEL_CACHE_FLAGS.
ei_disk_cache="${XDG_CACHE_HOME:-$HOME/.cache}/extrainterpreters/bazel-disk-cache"
mkdir -p "$ei_disk_cache"
find "$ei_disk_cache" -type f -atime +14 -delete 2>/dev/null || true
EI_BAZEL_CACHE_FLAGS=(--disk_cache="$ei_disk_cache")
if [ -n "${CI:-}" ]; then
  EI_BAZEL_CACHE_FLAGS+=(--nocache_test_results)
fi
