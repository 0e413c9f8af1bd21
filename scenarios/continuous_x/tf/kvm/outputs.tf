output "floating_ip_out" {
  description = "Public address of node1: Argo CD, MLflow and the three apps"
  value       = openstack_networking_floatingip_associate_v2.floating_ip.floating_ip
}

output "private_ips" {
  description = "Each node's address on the private network (for the Ansible inventory)"
  value       = { for name, port in openstack_networking_port_v2.private_port : name => port.all_fixed_ips[0] }
}
