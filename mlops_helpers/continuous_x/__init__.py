"""Continuous X: train, register, build and promote a model through staging, canary and
production, with a way back. Local backend on loopback; Chameleon backend with python-chi,
Terraform, Ansible and Argo Workflows."""
