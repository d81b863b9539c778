"""Images in: reading, transforms, importers, the demo generator, the manifest, its GX suite."""
