"""Which settings each cloud backend reads. Names only: values are never shown."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_helpers.config import Settings


@dataclass(frozen=True)
class CloudBackend:
    name: str
    scenarios: tuple[str, ...]
    # any one of these groups, fully set, counts as credentials being present
    credential_groups: tuple[tuple[str, ...], ...]
    settings: tuple[str, ...]
    meaning_when_absent: str

    def credentials_present(self, settings: Settings) -> bool:
        return any(settings.has(*group) for group in self.credential_groups)

    def credential_names(self) -> str:
        return " or ".join(" + ".join(n.upper() for n in g) for g in self.credential_groups)


CLOUD_BACKENDS: tuple[CloudBackend, ...] = (
    CloudBackend(
        "aws",
        ("sagemaker_byo", "dvc_cml"),
        (("aws_access_key_id", "aws_secret_access_key"), ("aws_profile",)),
        ("aws_region", "sagemaker_role_arn", "s3_bucket", "dvc_s3_url"),
        "sagemaker_byo and dvc_cml run on their local backends only",
    ),
    CloudBackend(
        "cml",
        ("dvc_cml",),
        (("repo_token",),),
        ("cml_target",),
        "the dvc_cml report is written to a file instead of posted as a PR comment",
    ),
    CloudBackend(
        "ibm",
        ("watson_openscale",),
        (("ibm_api_key",),),
        (
            "ibm_wml_url",
            "ibm_openscale_url",
            "ibm_service_instance_id",
            "ibm_space_name",
            "ibm_cos_crn",
            "ibm_wml_instance_crn",
        ),
        "watson_openscale runs on its local backend (MLflow + SQLite monitor) only",
    ),
    CloudBackend(
        "chameleon",
        ("continuous_x",),
        (("os_auth_url", "os_application_credential_id", "os_application_credential_secret"),),
        ("chi_site", "os_project_name", "ssh_key_name"),
        "continuous_x runs on its local backend (MLflow + apps on loopback) only",
    ),
)
