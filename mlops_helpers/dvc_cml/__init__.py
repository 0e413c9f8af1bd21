"""dvc_cml: a DVC pipeline in CI, with experiment comparison on pull requests."""
