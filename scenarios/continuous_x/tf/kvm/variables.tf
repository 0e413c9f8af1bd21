variable "suffix" {
  description = "Attendee or project suffix added to every resource name"
  type        = string
  nullable    = false
}

variable "key" {
  description = "Name of the OpenStack key pair installed on the nodes"
  type        = string
}

variable "reserved_flavor" {
  description = "The lease's reserved flavor (python-chi Lease.get_reserved_flavors): reservation:<flavor reservation id>"
  type        = string
  validation {
    condition     = startswith(var.reserved_flavor, "reservation:")
    error_message = "On KVM@TACC the nodes boot on the lease's reserved flavor, reservation:<id>."
  }
}

variable "image" {
  description = "Image of the three nodes"
  type        = string
  default     = "CC-Ubuntu24.04"
}

variable "sharednet" {
  description = "Name of the shared network every node also joins (for outbound traffic)"
  type        = string
  default     = "sharednet1"
}

variable "private_cidr" {
  description = "Address range of the cluster's private network"
  type        = string
  default     = "192.168.1.0/24"
}

variable "nodes" {
  description = "Node name to its last address octet on the private network"
  type        = map(number)
  default = {
    node1 = 11
    node2 = 12
    node3 = 13
  }
}

variable "open_ports" {
  description = "TCP ports opened on the nodes: SSH, HTTP (ingress-nginx: production with its canary share), then the NodePorts of MLflow, training, evaluation, the three apps and the MinIO console"
  type        = list(number)
  default     = [22, 80, 30800, 30909, 30808, 30081, 30080, 30082, 30901]
}

variable "allowed_cidr" {
  description = "Who may reach the open ports"
  type        = string
  default     = "0.0.0.0/0"
}

variable "floating_ip" {
  description = "The floating IP the lease reserved (Blazar allocates it; Terraform only attaches it to node1)"
  type        = string
}

variable "api_allowed_cidr" {
  description = "The only source allowed to reach the Kubernetes API (6443): the user's own address"
  type        = string
  validation {
    condition     = !endswith(var.api_allowed_cidr, "/0")
    error_message = "The Kubernetes API must not be open to the whole internet."
  }
}
