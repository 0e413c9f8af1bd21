terraform {
  required_version = ">= 1.5"
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 2.1"
    }
  }
}

# Credentials come from the OS_* environment variables (the application credential the
# chameleon backend passes to terraform); nothing is written to disk.
provider "openstack" {}
