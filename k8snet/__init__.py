"""k8snet: a study kit for the Kubernetes networking model.

The embedded lab cluster lives in :mod:`k8snet.lab`; the notebook helper API is
re-exported here as it grows.
"""

__version__ = "0.1.0"
