"""Platform tweaks: faster XLA CPU code paths, selected only on the CPU.

* :mod:`conv_cpu`: convolutions whose weight gradient is per-tap matmuls.
* :mod:`hugepages`: transparent huge pages for XLA CPU's buffers.
"""
