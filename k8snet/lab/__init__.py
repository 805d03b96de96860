"""The embedded lab cluster: a Kubernetes API server, controllers, kubelets,
kube-proxy and cluster DNS, built from Linux network namespaces and processes."""
