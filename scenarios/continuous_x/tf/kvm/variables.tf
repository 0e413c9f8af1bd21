variable "suffix" {
  description = "Attendee or project suffix added to every resource name"
  type        = string
  nullable    = false
}

variable "key" {
  description = "Name of the OpenStack key pair installed on the nodes"
  type        = string
}

variable "flavor" {
  description = "Flavor of the three nodes (or the reserved flavor of a lease)"
  type        = string
  default     = "m1.large"
}

variable "image" {
  description = "Image of the three nodes"
  type        = string
  default     = "CC-Ubuntu24.04"
}

variable "cloud" {
  description = "Entry in clouds.yaml to use"
  type        = string
  default     = "openstack"
}

variable "reservation_id" {
  description = "Blazar flavor reservation of the lease (empty: no lease)"
  type        = string
  default     = ""
}

variable "public_network" {
  description = "Name of the network floating IPs are allocated from"
  type        = string
  default     = "public"
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
  description = "TCP ports opened on the nodes: SSH, then the NodePorts of MLflow, training, evaluation, the three apps and the MinIO console"
  type        = list(number)
  default     = [22, 30800, 30909, 30808, 30081, 30080, 30082, 30901]
}

variable "allowed_cidr" {
  description = "Who may reach the open ports"
  type        = string
  default     = "0.0.0.0/0"
}
