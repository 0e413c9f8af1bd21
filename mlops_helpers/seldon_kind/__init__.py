"""The seldon_kind scenario: Seldon Core model servers and GitOps promotion."""
