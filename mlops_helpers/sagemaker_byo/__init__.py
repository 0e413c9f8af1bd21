"""Scenario ``sagemaker_byo``: a bring-your-own SageMaker container, trained and served.

The container's own ``train`` and ``serve`` programs (``scenarios/sagemaker_byo/container``)
run locally under the SageMaker contract, or on SageMaker itself through boto3.
"""
