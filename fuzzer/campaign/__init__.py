"""The campaign stage: the driver, the coverage map and scheduler, progress display, and distributed lanes."""
