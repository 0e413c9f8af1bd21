"""Scenario ``watson_openscale``: store, deploy and monitor a model; its quality gates.

Locally the model repository and deployment space are MLflow (tracking and registry on
SQLite), the online deployment is a real scoring server on loopback, and the OpenScale
monitor (subscription, payload and feedback logs, quality monitor runs) is SQLite. The
``ibm`` backend drives watsonx.ai (Watson Machine Learning) and Watson OpenScale.
"""
