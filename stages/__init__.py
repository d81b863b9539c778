"""The DVC stages: one thin script per stage, named like the stage and its params section."""
