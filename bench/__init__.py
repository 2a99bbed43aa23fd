"""Load generator, null sink and side-by-side runner: see docs/performance.md."""
