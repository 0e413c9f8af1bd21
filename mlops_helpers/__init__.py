"""Helper library for the MLOps CI/CD workshop.

Importing the package is cheap on purpose: heavy SDKs (boto3, mlflow, dvc, IBM, sklearn)
load only inside the functions that need them, so notebooks and the CLI start fast.
"""

__version__ = "0.1.0"
