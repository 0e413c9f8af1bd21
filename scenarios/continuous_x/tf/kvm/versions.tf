terraform {
  required_version = ">= 1.5"
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 2.1"
    }
  }
}

# Credentials come from clouds.yaml (never committed); the cloud entry is a variable.
provider "openstack" {
  cloud = var.cloud
}
