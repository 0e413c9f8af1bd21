# Things that exist already and that this configuration only reads.
data "openstack_networking_network_v2" "sharednet" {
  name = var.sharednet
}

data "openstack_networking_subnet_v2" "sharednet_subnet" {
  network_id = data.openstack_networking_network_v2.sharednet.id
}

data "openstack_networking_secgroup_v2" "default" {
  name = "default"
}
