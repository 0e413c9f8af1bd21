# Three nodes on a private network; node1 (the Kubernetes control plane) gets the floating IP.

resource "openstack_networking_network_v2" "private_net" {
  name                  = "private-net-mlops-${var.suffix}"
  port_security_enabled = false
}

resource "openstack_networking_subnet_v2" "private_subnet" {
  name       = "private-subnet-mlops-${var.suffix}"
  network_id = openstack_networking_network_v2.private_net.id
  cidr       = var.private_cidr
  no_gateway = true
}

resource "openstack_networking_secgroup_v2" "mlops" {
  name        = "allow-mlops-${var.suffix}"
  description = "SSH, the apps (staging, canary, production) and the platform UIs"
}

resource "openstack_networking_secgroup_rule_v2" "ingress" {
  for_each          = toset([for p in var.open_ports : tostring(p)])
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = tonumber(each.value)
  port_range_max    = tonumber(each.value)
  remote_ip_prefix  = var.allowed_cidr
  security_group_id = openstack_networking_secgroup_v2.mlops.id
}

# The Kubernetes API: kubectl and argo on the user's machine, and nobody else.
resource "openstack_networking_secgroup_rule_v2" "kube_api" {
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 6443
  port_range_max    = 6443
  remote_ip_prefix  = var.api_allowed_cidr
  security_group_id = openstack_networking_secgroup_v2.mlops.id
}

resource "openstack_networking_port_v2" "private_port" {
  for_each   = var.nodes
  name       = "port-${each.key}-mlops-${var.suffix}"
  network_id = openstack_networking_network_v2.private_net.id
  fixed_ip {
    subnet_id  = openstack_networking_subnet_v2.private_subnet.id
    ip_address = cidrhost(var.private_cidr, each.value)
  }
}

resource "openstack_networking_port_v2" "sharednet_port" {
  for_each   = var.nodes
  name       = "sharednet-${each.key}-mlops-${var.suffix}"
  network_id = data.openstack_networking_network_v2.sharednet.id
  security_group_ids = [
    data.openstack_networking_secgroup_v2.default.id,
    openstack_networking_secgroup_v2.mlops.id,
  ]
}

# On KVM@TACC an instance boots on its lease's reserved flavor, "reservation:<id>" (Blazar
# makes it for the flavor reservation and routes it to the reserved hosts); no scheduler hint.
resource "openstack_compute_instance_v2" "nodes" {
  for_each    = var.nodes
  name        = "${each.key}-mlops-${var.suffix}"
  image_name  = var.image
  flavor_name = var.reserved_flavor
  key_pair    = var.key

  network {
    port = openstack_networking_port_v2.sharednet_port[each.key].id
  }
  network {
    port = openstack_networking_port_v2.private_port[each.key].id
  }

  user_data = <<-EOT
    #! /bin/bash
    echo "127.0.1.1 ${each.key}-mlops-${var.suffix}" >> /etc/hosts
  EOT
}

# The lease's reserved floating IP (allocated by Blazar, released when the lease ends).
resource "openstack_networking_floatingip_associate_v2" "floating_ip" {
  floating_ip = var.floating_ip
  port_id     = openstack_networking_port_v2.sharednet_port["node1"].id
}
