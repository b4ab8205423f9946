"""The shared core: the example record, config loading, model resolution, run manifests, the judge server."""
